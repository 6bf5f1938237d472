"""The linear classifier of LP and of a head fitted like it: standardised features, a logistic regression.

In:  features (N, d), integer classes (N,), the number of classes C, a seed.
Out: ``classifier(C, seed)``, scikit-learn's pipeline (``StandardScaler``, multinomial ``LogisticRegression``);
     ``probabilities``: (N, C) of a fitted one, a zero column for a class it never saw; ``fit_linear_head``: its
     weights as a linear layer's kernel (d, C) and bias (C,), C chosen by cross-validation.
``engine.linear_probe`` (LP) chooses C on the validation split; ``engine.runs`` starts V2S's head with
``fit_linear_head`` (``--head-fit``), on the fit split alone.
"""

import numpy as np

C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
DEFAULT_C = 1.0


def classifier(C, seed):
    """The pipeline: standardise every feature, then a multinomial logistic regression of inverse strength C."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, random_state=seed))


def probabilities(model, f, num_classes):
    """Class probabilities (N, C) of a fitted pipeline, with a zero column for a class it never saw."""
    probs = np.zeros((len(f), num_classes))
    probs[:, model.classes_] = model.predict_proba(f)
    return probs


def fit_linear_head(f, y, num_classes, seed=0, grid=C_GRID):
    """A linear head fitted on features f (N, d) of classes y: (kernel (d, C), bias (C,), the chosen C).

    The probe's classifier (standardised features, a logistic regression) with its C chosen by stratified
    cross-validation on (f, y) alone (up to 3 folds; ``DEFAULT_C`` when a class has a single series), refitted on all
    of them, and its standardisation folded into the weights, so ``f @ kernel + bias`` gives its logits. A class
    absent from y gets a bias far below the others (never predicted). For V2S's head (``--head-fit``).
    """
    from sklearn.model_selection import StratifiedKFold

    from engine.training import cross_entropy

    f, y = np.asarray(f, np.float64), np.asarray(y)
    folds = int(min(3, np.bincount(y)[np.unique(y)].min()))
    C = DEFAULT_C
    if folds >= 2 and len(grid) > 1:
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(f, y))
        scores = []
        for c in grid:
            probs = np.zeros((len(y), num_classes))
            for fit, held in splits:
                probs[held] = probabilities(classifier(c, seed).fit(f[fit], y[fit]), f[held], num_classes)
            scores.append((cross_entropy(probs, y), c))
        C = min(scores)[1]
    model = classifier(C, seed).fit(f, y)
    scaler, regression = model[0], model[1]
    coef = regression.coef_ / scaler.scale_  # on the raw features
    intercept = regression.intercept_ - coef @ scaler.mean_
    kernel, bias = np.zeros((f.shape[1], num_classes)), np.zeros(num_classes)
    seen = regression.classes_
    if len(seen) == 2:  # one logit for the second class against the first: split it evenly, the softmax is the same
        coef, intercept = np.stack([-coef[0], coef[0]]) / 2, np.array([-intercept[0], intercept[0]]) / 2
    kernel[:, seen], bias[seen] = coef.T, intercept
    missing = np.setdiff1d(np.arange(num_classes), seen)
    bias[missing] = bias[seen].min() - 30.0
    return kernel.astype(np.float32), bias.astype(np.float32), C
