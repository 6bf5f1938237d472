"""One black-box V2S run (``engine.black_box`` has the method): its loop, checkpoints and run folder.

In:  ``UCRData``, a validated ``RunConfig`` with ``black_box`` set, the run folder (locked by ``runs.train``), the
     split and the encoding layer ``runs.train`` made; the source is ``open_black_box(config.black_box)``.
Out: the finished ``Run``; in the folder ``summary.json`` (``queries`` spent training and validating,
     ``test_queries``, ``lp_test_accuracy``: the head fitted on the box's outputs without a program),
     ``history.csv``, ``curves.png`` and ``ckpt/`` (``state.json`` and ``arrays.npz`` after every epoch, written
     atomically: a killed run resumes from its last epoch with ``--resume``).
"""

import dataclasses
import os
import sys
import time

import numpy as np

from engine.black_box import (SMOOTHING_PER_LR, Adam, cross_entropies, open_black_box, probe_offsets, program_basis,
                              queries_per_series, softmax, unit_directions, zo_estimate)
from engine.run_folder import Run, plot_curves, portable, read_summary, write_history
from utils import atomic_write, read_json, write_json

ARRAYS = ("coefficients", "kernel", "bias", "best_coefficients", "best_kernel", "best_bias", "center", "scale")


def _head_probs(outputs, center, scale, kernel, bias):
    return softmax(((outputs - center) / scale) @ kernel + bias)


def _save(folder, state, arrays):
    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(os.path.join(folder, "arrays.npz"), write)
    write_json(os.path.join(folder, "state.json"), state)


def train_black_box(data, config, folder, split, encoder, command=None):
    """Train the program and the head through the black box; score the test set once; see the module docstring.

    ``split``: (x_fit, y_fit, x_val, y_val, notes) as ``runs.split_data`` makes it; ``encoder``: the run's encoding
    layer (``runs.encoder_for``)."""
    from tqdm import tqdm

    from engine.logistic import fit_linear_head
    from ts_model import feature_standardisation

    box = open_black_box(config.black_box)
    x_fit, y_fit, x_val, y_val, notes = split
    for note in notes:
        print(f"note: {note}")
    encode = lambda x: np.asarray(encoder(np.asarray(x, np.float32)))  # noqa: E731
    basis = program_basis(config.basis)
    ckpt = os.path.join(folder, "ckpt")
    state = read_json(os.path.join(ckpt, "state.json")) if config.resume and os.path.isfile(
        os.path.join(ckpt, "state.json")) else None
    rng = np.random.default_rng(config.seed)
    if state is None:
        f_fit = box(encode(x_fit))  # the outputs without a program: the standardisation and LP's start
        center, scale = feature_standardisation(f_fit)  # a floor on the scale: see set_feature_standardisation
        kernel, bias, _ = fit_linear_head((f_fit - center) / scale, y_fit, data.num_classes, seed=config.seed)
        coefficients = np.zeros(config.basis)
        lp_val = _head_probs(box(encode(x_val)), center, scale, kernel, bias)
        state = {"epoch": 0, "best": float(cross_entropies(lp_val, y_val).mean()), "best_epoch": None, "wait": 0,
                 "queries": box.queries, "lp_val_cross_entropy": float(cross_entropies(lp_val, y_val).mean()),
                 "lp_val_accuracy": float(np.mean(lp_val.argmax(1) == y_val)),
                 "history": {}, "seconds": 0.0, "rng": rng.bit_generator.state}
        arrays = {"coefficients": coefficients, "kernel": kernel, "bias": bias, "best_coefficients": coefficients,
                  "best_kernel": kernel, "best_bias": bias, "center": center, "scale": scale,
                  "lp_kernel": kernel, "lp_bias": bias}
        program_adam, head_adam = Adam(config.basis, config.lr), Adam(kernel.shape, config.lr)
        bias_adam = Adam(bias.shape, config.lr)
    else:
        with np.load(os.path.join(ckpt, "arrays.npz")) as stored:
            arrays = {k: stored[k] for k in stored.files}
        rng.bit_generator.state = state["rng"]
        box.queries = state["queries"]
        program_adam, head_adam, bias_adam = Adam(config.basis, config.lr), Adam(arrays["kernel"].shape, config.lr), \
            Adam(arrays["bias"].shape, config.lr)
        for adam, name in ((program_adam, "program"), (head_adam, "head"), (bias_adam, "head_bias")):
            adam.load(arrays, name)
    center, scale = arrays["center"], arrays["scale"]
    coefficients, kernel, bias = arrays["coefficients"], arrays["kernel"], arrays["bias"]
    val_cost = len(x_val)
    beta = SMOOTHING_PER_LR * config.lr
    waves_fit = encode(x_fit)
    waves_val = encode(x_val)
    clock = time.time()
    bar = tqdm(total=config.budget, initial=box.queries, unit="query", desc=f"{data.name} black box",
               disable=not config.verbose, dynamic_ncols=True)
    stop = None
    while stop is None:
        if state["epoch"] >= config.epochs:
            stop = "epochs"
            break
        order = rng.permutation(len(x_fit))
        batches = [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        if box.queries + queries_per_series(config) * len(order) + val_cost > config.budget:
            stop = "budget"
            break
        losses, correct = [], 0
        for batch in batches:
            directions = unit_directions(rng, config.directions, config.basis)
            programs = coefficients[None] + beta * probe_offsets(directions, config.antithetic)
            waves = waves_fit[batch][None] + (programs @ basis.T)[:, None, :]  # (1 + q or 1 + 2q, batch, 16000)
            outputs = box(waves.reshape(-1, waves.shape[-1])).reshape(len(programs), len(batch), -1)
            probs = _head_probs(outputs, center, scale, kernel, bias)  # (programs, batch, C)
            per_program = cross_entropies(probs, np.broadcast_to(y_fit[batch], probs.shape[:2])).mean(axis=1)
            grad_c = zo_estimate(per_program, directions, beta, config.antithetic)
            features = (outputs[0] - center) / scale
            delta = probs[0] - np.eye(data.num_classes)[y_fit[batch]]
            coefficients = program_adam.step(coefficients, grad_c)
            kernel = head_adam.step(kernel, features.T @ delta / len(batch))
            bias = bias_adam.step(bias, delta.mean(0))
            losses.append(per_program[0] * len(batch))
            correct += int((probs[0].argmax(1) == y_fit[batch]).sum())
            bar.update(queries_per_series(config) * len(batch))
        val_probs = _head_probs(box(waves_val + coefficients @ basis.T), center, scale, kernel, bias)
        bar.update(val_cost)
        val_ce = float(cross_entropies(val_probs, y_val).mean())
        logs = {"loss": float(np.sum(losses) / len(x_fit)), "accuracy": correct / len(x_fit), "val_ce": val_ce,
                "val_accuracy": float(np.mean(val_probs.argmax(1) == y_val)), "queries": box.queries}
        for key, value in logs.items():
            state["history"].setdefault(key, []).append(value)
        if val_ce < state["best"]:
            state.update(best=val_ce, best_epoch=state["epoch"], wait=0)
            arrays.update(best_coefficients=coefficients, best_kernel=kernel, best_bias=bias)
        else:
            state["wait"] += 1
        state["epoch"] += 1
        state.update(queries=box.queries, rng=rng.bit_generator.state,
                     seconds=state["seconds"] + time.time() - clock)
        clock = time.time()
        arrays.update(coefficients=coefficients, kernel=kernel, bias=bias, **program_adam.state("program"),
                      **head_adam.state("head"), **bias_adam.state("head_bias"))
        _save(ckpt, state, arrays)
        bar.set_postfix(loss=f"{logs['loss']:.4f}", val_ce=f"{val_ce:.4f}")
        if config.patience and state["wait"] >= config.patience:
            stop = "patience"
    bar.close()
    return _finish(data, config, folder, command, box, state, arrays, encode, basis, stop)


def _finish(data, config, folder, command, box, state, arrays, encode, basis, stop):
    """Score the test set once with the best epoch's program and head, and LP's head without a program."""
    training_queries = box.queries
    waves = encode(data.x_test)
    center, scale = arrays["center"], arrays["scale"]
    probs = _head_probs(box(waves + arrays["best_coefficients"] @ basis.T), center, scale, arrays["best_kernel"],
                        arrays["best_bias"])
    lp = _head_probs(box(waves), center, scale, arrays["lp_kernel"], arrays["lp_bias"])
    best, hist = state["best_epoch"], state["history"]
    summary = {
        "dataset": data.name, "data_source": portable(data.source), "classes": data.num_classes,
        "length": data.length, "train_size": len(data.x_train), "test_size": len(data.x_test), "protocol": "honest",
        "config": {k: portable(v) for k, v in dataclasses.asdict(config).items()},
        "best_epoch": best, "epochs_run": state["epoch"], "stopped_by": stop,
        "val_accuracy": hist["val_accuracy"][best] if best is not None else state["lp_val_accuracy"],
        "val_cross_entropy": state["best"], "lp_val_cross_entropy": state["lp_val_cross_entropy"],
        "test_accuracy": float(np.mean(probs.argmax(1) == data.y_test)),
        "test_cross_entropy": float(cross_entropies(probs, data.y_test).mean()),
        "lp_test_accuracy": float(np.mean(lp.argmax(1) == data.y_test)),
        "queries": training_queries, "test_queries": box.queries - training_queries,
        "wall_seconds": round(state["seconds"], 2),
        "command": command or "python v2s_main.py " + " ".join(sys.argv[1:]),
    }
    if hist:
        write_history(os.path.join(folder, "history.csv"), hist)
        plot_curves(os.path.join(folder, "curves.png"), hist, f"{data.name}, black box {config.black_box}")
    write_json(os.path.join(folder, "summary.json"), summary)
    chosen = "no epoch beat the program-free start (LP)" if best is None else f"best epoch {best}"
    print(f"--- Test accuracy: {summary['test_accuracy']:.4f} (LP on the box's outputs: {summary['lp_test_accuracy']:.4f})"
          f"; {chosen}; {training_queries:,} queries to train and validate, {summary['test_queries']:,} to test")
    print(f"Run folder: {folder}")
    return Run(folder, read_summary(os.path.join(folder, "summary.json")))
