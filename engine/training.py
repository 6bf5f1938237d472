"""The V2S training loop: seeded mini-batch epochs, a validation pass per epoch, checkpoints, early stopping.

In:  a compiled Keras model (its optimizer is used; its ``loss`` is not), training series ``x`` (N, L) float32 with
     integer labels ``y`` (N,), optional validation arrays, and a ``ResumableCheckpoint`` folder.
Out: the checkpoint's state (history per epoch, best epoch by the monitored metric, epochs done); the model holds
     the last epoch's weights (``checkpoint.restore_best()`` loads the best one).

Why not ``model.fit``: on this CPU (one TensorFlow thread per run, as sweeps run), ``fit`` took about twice as
long per step as the same step compiled once and fed tensors directly (``bench/profile_v2s.py`` measures both).
The loop also makes resuming exact: batch order is a function of (seed, epoch) only, and the checkpoint holds the
weights and optimizer state, so a killed and resumed run trains on the same batches as an uninterrupted one.

Metrics per epoch, as Keras named them: ``loss`` (cross-entropy plus any penalty such as L2 on delta), ``ce``
(cross-entropy alone), ``accuracy``, their ``val_`` versions, and ``learning_rate``.
"""

import contextlib
import time

import numpy as np

from engine.augmentation import augmentation_rng


def epoch_order(n, seed, epoch):
    """The order in which epoch ``epoch`` visits ``n`` training series: a permutation fixed by (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def cross_entropy(probs, y):
    """Mean sparse categorical cross-entropy of (N, C) probabilities, clipped as Keras clips them."""
    p = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0 - 1e-7)
    return float(-np.mean(np.log(p)))


class StepFunctions:
    """The compiled training step and forward pass of one model, traced once for any batch size.

    ``train_outputs``, when given, is a model sharing the trained weights whose output the loss is computed on
    (an ensemble trains every program on its own predictions, shape (batch, K, C), while ``model`` averages them).
    """

    def __init__(self, model, train_outputs=None):
        import keras
        import tensorflow as tf

        from engine.training_graph import training_graph

        from ts_model import OUTPUT_LAYERS, series_signature

        self.model = model
        names = {layer.name for layer in model.layers}
        if train_outputs is None and "reprogram" in names and names & set(OUTPUT_LAYERS):
            train_outputs = training_graph(model)  # the same outputs, computed to train faster (training_graph.py)
        train_model = train_outputs or model
        weights = model.trainable_weights
        optimizer = model.optimizer
        spec = [series_signature(model), tf.TensorSpec((None,), tf.int32)]

        def ce_of(y, probs):
            # A (batch, K, C) ensemble output: every program is scored on the labels; the mean keeps the scale.
            if len(probs.shape) == 3:
                y = tf.repeat(y[:, None], probs.shape[1], axis=1)
            return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, probs))

        @tf.function(input_signature=spec)
        def train_step(x, y):
            with tf.GradientTape() as tape:
                probs = train_model(x, training=True)
                ce = ce_of(y, probs)
                loss = ce + (tf.add_n(model.losses) if model.losses else 0.0)
            grads = tape.gradient(loss, weights)
            optimizer.apply_gradients(zip(grads, weights))
            return loss, ce, probs

        @tf.function(input_signature=spec[:1])
        def forward(x):
            return model(x, training=False)

        self.train_step, self.forward = train_step, forward

    def penalty(self):
        """The current value of the model's added losses (L2 on delta), 0 when it has none."""
        return float(sum(float(np.asarray(v)) for v in self.model.losses)) if self.model.losses else 0.0

    def predict(self, x, batch_size=256):
        """(N, C) probabilities of ``x`` (inference mode: no dropout on delta)."""
        out = [np.asarray(self.forward(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0,) + tuple(self.model.output.shape[1:]), np.float32)


def ema_momentum(epochs, steps_per_epoch):
    """Per-step momentum of a weight average over about ``epochs`` epochs of ``steps_per_epoch`` steps each.

    An exponential moving average with momentum b weighs the last 1 / (1 - b) steps most; fixing that window in
    epochs rather than steps gives every dataset the same averaging horizon, whether an epoch is 2 steps
    (GunPoint) or 90 (FordA). Returns 0 (no averaging) for a window of one step or less.
    """
    window = float(epochs) * int(steps_per_epoch)
    return 0.0 if window <= 1.0 else 1.0 - 1.0 / window


@contextlib.contextmanager
def averaged_weights(model):
    """Within the block, ``model`` holds its optimizer's moving average of the trained weights; after it, the
    trained weights again.

    The average is Keras' own (an optimizer made with ``use_ema=True`` updates it after every step and saves it
    with its state). Validation, the best-epoch weights and everything scored afterwards use the average, while
    training continues from the trained weights. A no-op when the optimizer keeps no average (or has not yet
    taken a step).
    """
    optimizer = model.optimizer
    if not (getattr(optimizer, "use_ema", False) and optimizer.built):
        yield
        return
    weights = model.trainable_weights
    trained = [np.array(w) for w in weights]
    optimizer.finalize_variable_values(weights)
    try:
        yield
    finally:
        for w, value in zip(weights, trained):
            w.assign(value)


def fit(model, x, y, checkpoint, *, epochs, batch_size, seed, validation=None, initial_epoch=0, steps=None,
        epoch_callbacks=(), progress=None, augment=None):
    """Train ``model`` for epochs ``initial_epoch .. epochs - 1`` unless ``checkpoint`` stops it early.

    ``checkpoint`` (a ``utils.ResumableCheckpoint``) records every epoch, keeps the best weights by its monitored
    metric and sets ``model.stop_training`` when its patience runs out. ``epoch_callbacks`` are Keras-like
    callbacks whose ``on_epoch_end(epoch, logs)`` may add to the logs before the checkpoint records them (e.g. the
    SWD); those with an ``on_epoch_begin(epoch)`` are called before the epoch's first step (an iterative mapping).
    ``progress``: a callable ``(epoch, logs, seconds)`` called after each epoch (a progress bar), or None.
    ``augment``: an ``augmentation.Augmentation`` applied to every training batch (never to validation), or None;
    its draws, like the batch order, are fixed by (seed, epoch). When the optimizer keeps a moving average of the
    weights (``use_ema``), validation and the best-epoch checkpoint see the average (``averaged_weights``).
    Returns the number of training samples seen (for a samples-per-second figure).
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int32)
    steps = steps or StepFunctions(model)
    checkpoint.set_model(model)
    for cb in epoch_callbacks:
        cb.set_model(model)
    model.stop_training = False
    augment = augment if augment is not None and augment.active else None
    scale = float(np.std(x)) if augment else 1.0
    seen = 0
    for epoch in range(initial_epoch, epochs):
        start = time.time()
        for cb in epoch_callbacks:
            if hasattr(cb, "on_epoch_begin"):
                cb.on_epoch_begin(epoch)
        order = epoch_order(len(x), seed, epoch)
        rng = augmentation_rng(seed, epoch) if augment else None
        loss_sum = ce_sum = correct = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            batch = augment(x[idx], rng, scale) if augment else x[idx]
            loss, ce, probs = steps.train_step(batch, y[idx])
            probs = np.asarray(probs)
            if probs.ndim == 3:
                probs = probs.mean(axis=1)
            loss_sum += float(loss) * len(idx)
            ce_sum += float(ce) * len(idx)
            correct += float(np.sum(np.argmax(probs, axis=1) == y[idx]))
        seen += len(x)
        logs = {"loss": loss_sum / len(x), "ce": ce_sum / len(x), "accuracy": correct / len(x)}
        _check_finite_epoch(model, logs, epoch)
        with averaged_weights(model):
            if validation is not None:
                xv, yv = validation
                probs = steps.predict(np.asarray(xv, np.float32))
                logs["val_ce"] = cross_entropy(probs, np.asarray(yv))
                logs["val_loss"] = logs["val_ce"] + steps.penalty()
                logs["val_accuracy"] = float(np.mean(np.argmax(probs, axis=1) == np.asarray(yv)))
            for cb in epoch_callbacks:
                cb.on_epoch_end(epoch, logs)
            checkpoint.record(epoch, logs)
        checkpoint.finish_epoch(epoch)
        if progress:
            progress(epoch, logs, time.time() - start)
        if model.stop_training:
            break
    return seen


def _check_finite_epoch(model, logs, epoch):
    """Stop a run whose loss or trained weights stopped being finite numbers, before the epoch is recorded (so no
    test accuracy of a broken model is ever reported): one line naming the epoch."""
    from engine.errors import UsageError

    bad = next((w.name for w in model.trainable_weights if not np.isfinite(np.asarray(w)).all()), None)
    if bad is not None or not np.isfinite(logs["loss"]):
        what = f"the weight {bad!r}" if bad is not None else f"the training loss ({logs['loss']})"
        raise UsageError(f"training diverged in epoch {epoch}: {what} is not a finite number; lower --lr, or check "
                         "the data's scale")


class TensorBoardScalars:
    """Writes every epoch's metrics as TensorBoard scalars into ``folder`` (``--tensorboard``)."""

    def __init__(self, folder):
        self.folder = folder
        self.writer = None

    def set_model(self, model):
        import tensorflow as tf

        self.writer = self.writer or tf.summary.create_file_writer(self.folder)

    def on_epoch_end(self, epoch, logs):
        import tensorflow as tf

        with self.writer.as_default():
            for key, value in logs.items():
                tf.summary.scalar(key, value, step=epoch)
        self.writer.flush()
