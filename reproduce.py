"""Reproduce the paper's Table 2: a resumable grid of datasets x methods x configurations x seeds, then the table.

    python reproduce.py --data-dir ../shared/ucr --methods V2Sa TF_a MiniRocket          # cheap default, one seed
    python reproduce.py --data-dir UCRArchive_2018 --protocol paper --seeds 0 1 2 3 4 5 6 7 8 9
    python reproduce.py --data-dir ../shared/ucr --protocol paper --dropouts 0 0.4 --segments 0 1 --methods V2Sa
    python reproduce.py --data-dir ../shared/ucr --backend ray [--address ray://host:10001]
    python reproduce.py --table-only                                                     # rebuild the table
    python reproduce.py --import-runs results/ucr19          # reuse v2s_main.py runs made with the same settings
    python reproduce.py --data-dir ../shared/ucr --datasets GunPoint --methods V2Sa --settings head=mapping

Protocols: ``default`` runs each method once per seed with v2s_main.py's defaults, the best epoch chosen on a
stratified validation split of the training data (honest). ``paper`` runs V2S the way the paper's reference code
did: its label mapping on zero-padded series (whatever today's default), trained on the whole training set while
watching the test set, the score of a run its best test accuracy over the epochs, the grid of dropout in
{0, 0.1, 0.2, 0.3, 0.4} x m in {1..10} (``--dropouts`` / ``--segments`` run part of it; m 0: as many copies as fit)
with the best configuration per dataset / seed, averaged over seeds. Test data chooses there: its column is
labelled OPTIMISTIC and stands apart from the honest ones.
MiniRocket (aeon, optional extra) runs on the same splits. Datasets missing from --data-dir are listed and skipped.

Every finished run is appended as one JSON line to the store (``runs/reproduce/runs.jsonl`` unless --store names
one) under an exclusive file lock, so a rerun skips finished runs and a killed sweep loses nothing: the runs in
flight resume from their last finished epoch. One sweep writes a store at a time (a second is refused at once; with
--jobs or a Ray cluster one sweep runs many tasks side by side). Every flag is checked before any task starts. A
run's key names only the settings that differ from v2s_main.py's defaults: after changing a default, start a new
store (or drop the records it affects); a store whose V2S records read the classes another way than today's default
takes no new default runs. Out: the table beside the store (``runs/reproduce/runs.md`` / ``.csv`` and
``runs_scatter.png`` for the default store) unless ``--out`` names a prefix; the committed ``results/table2`` is
written only when named.
"""

from engine import tf_setup  # first: TensorFlow reads its log level when it loads
import argparse
import contextlib
import csv
import dataclasses
import fcntl
import hashlib
import io
import json
import os
import sys
import time

import numpy as np

from engine.errors import UsageError, cli_errors, terminate_as_interrupt
from results_table import PAPER_ARTEFACTS as ARTEFACTS
from results_table import PAPER_TABLE, paper_rows
from engine import runs
from engine.run_folder import SETTINGS_BEFORE_THEY_EXISTED
from speech.spec import ARCHITECTURES

REPO = os.path.dirname(os.path.abspath(__file__))
METHODS = (*ARCHITECTURES, "TF_a", "FCN", "LP", "MiniRocket")
# (mode, source architecture) of each trained method: V2S with each source, and the baselines; LP and MiniRocket
# are not V2S runs.
METHOD_SETTINGS = {**{arch: ("reprogram", arch) for arch in ARCHITECTURES}, "TF_a": ("transfer", "V2Sa"),
                   "FCN": ("fcn", "V2Sa")}
METHOD_OF_RUN = {settings: method for method, settings in METHOD_SETTINGS.items()}
DEFAULT_EPOCHS = runs.RunConfig().epochs
PAPER_DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.4)
PAPER_SEGMENTS = tuple(range(1, 11))
# The run settings LP takes from --settings: how the series is encoded, and which head's features it reads.
LP_SETTINGS = ("encoding", "carrier", "deviation", "depth", "clip", "layout", "head", "seg", "max_seg", "val_split")
# A sweep writes under runs/ unless --store names another place: the committed stores and tables under results/
# change only by a command that names them (results/README.md lists those commands).
DEFAULT_STORE = os.path.join(REPO, "runs", "reproduce", "runs.jsonl")
PUBLISHED_BASELINES = os.path.join(REPO, "reference", "published_baselines.csv")
# What makes a run distinct; "source_weights" only when a sweep overrides the shipped weights, "settings" only when
# it changes run settings (--settings).
TASK_FIELDS = ("dataset", "method", "config", "seed", "epochs", "source_weights", "settings")
# Every store line has these (and "test_accuracy", or "failed" for a task that raised); others count as corrupt.
RECORD_FIELDS = ("key", "dataset", "method", "config", "seed")


# ----------------------------------------------------------------------------------------------------- the store
class ResultStore:
    """Append-only JSON-lines file of finished runs; safe for concurrent writers (flock) and killed writers."""

    def __init__(self, path):
        if os.path.isdir(path):
            raise UsageError(f"--store {path} is a folder; expected a JSON-lines file (one finished run per line), "
                             "e.g. results/reproduce/runs.jsonl")
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    @contextlib.contextmanager
    def _locked(self, mode):
        with open(self.path, mode) as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield fh
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def append(self, record):
        line = json.dumps(record, sort_keys=True) + "\n"
        with self._locked("a+b") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell():
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":  # a last line without its newline (an editor, a killed writer)
                    line = "\n" + line  # ends there, so this record starts a line of its own
            fh.write(line.encode())  # one write of whole lines: a kill leaves at most a torn last line
            fh.flush()
            os.fsync(fh.fileno())

    @contextlib.contextmanager
    def sweep_lock(self):
        """Held while a sweep writes the store; a second sweep on the same store is refused at once, since both
        would run the same tasks into the same run folders."""
        with open(self.path + ".lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError(f"--store {self.path} is being written by another reproduce.py sweep; wait for it "
                                 "to finish or give this one another --store") from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def load(self):
        """(records, problems): every well-formed line, and a message per corrupt line (skipped, not fatal)."""
        if not os.path.isfile(self.path):
            return [], []
        records, problems = [], []
        with self._locked("r") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    missing = [f for f in RECORD_FIELDS if f not in record]
                    if missing or not ("failed" in record or "test_accuracy" in record):
                        raise KeyError(missing or ["test_accuracy"])
                    records.append(record)
                except (json.JSONDecodeError, KeyError, TypeError):
                    problems.append(f"{self.path}, line {lineno}: not a run record, skipped ({line.strip()[:60]!r})")
        return records, problems


# ------------------------------------------------------------------------------------------------------ the grid
def run_key(task):
    fields = {k: task[k] for k in TASK_FIELDS if k in task}
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def paper_config(dropout, segments):
    """A configuration of the paper protocol's grid: the reference code's way of training and choosing (its label
    mapping, which brings zero padding and lr 0.01 with it, runs.HEAD_DEFAULTS; the test set watched)."""
    return {"dr": dropout, "seg": segments, "head": "mapping", "val_on_test": True}


def is_paper_protocol(record):
    """Whether a store record (or task) is a run of the paper protocol, scored on the test set."""
    return bool((record.get("config") or {}).get("val_on_test"))


def plan(datasets, methods, seeds, protocol, epochs, source_weights=None, settings=None,
         grid=(PAPER_DROPOUTS, PAPER_SEGMENTS)):
    """The tasks of the grid; reprogramming methods get the paper's configurations under ``protocol='paper'``
    (``grid``: the dropouts and copy counts m to run, the paper's whole grid unless narrowed).

    ``source_weights`` (e.g. 'random' for the control) and ``settings`` (run settings, e.g. {"head": "attention"},
    for the V2S tasks, any source) become part of each such task and its key, so such a sweep never passes for, or
    skips, the runs with the shipped weights and default settings in a shared store.
    """
    tasks = []
    for dataset in datasets:
        for method in methods:
            if protocol == "paper" and method in ARCHITECTURES:
                configs = [paper_config(d, m) for d in grid[0] for m in grid[1]]
            else:
                configs = [{}]
            for config in configs:
                for seed in seeds:
                    task = {"dataset": dataset, "method": method, "config": config, "seed": seed, "epochs": epochs}
                    if source_weights and method not in ("MiniRocket", "FCN"):
                        task["source_weights"] = source_weights
                    if settings and method in ARCHITECTURES:
                        task["settings"] = dict(settings)
                    elif settings and method == "LP" and set(settings) & set(LP_SETTINGS):
                        task["settings"] = {k: v for k, v in settings.items() if k in LP_SETTINGS}
                    task["key"] = run_key(task)
                    tasks.append(task)
    return tasks


def datasets_in(data_dir):
    """Every dataset a folder holds: the names of <Name>/<Name>_TRAIN.* sub-folders and of <Name>_TRAIN.* files."""
    names = set()
    for entry in os.listdir(data_dir):
        path = os.path.join(data_dir, entry)
        inside = os.listdir(path) if os.path.isdir(path) else [entry]
        names |= {f[:f.lower().rindex("_train")] for f in inside if "_train." in f.lower()}
    return sorted(names, key=str.lower)


def available_datasets(names, data_dir):
    """(present, missing, unreadable) among ``names`` in ``data_dir``; unreadable: [(name, the reason)]."""
    from ts_dataloader import DatasetError, DatasetNotFound, load_ucr

    present, missing, unreadable = [], [], []
    for name in names:
        try:
            load_ucr(name, data_dir=data_dir)
            present.append(name)
        except DatasetNotFound:
            missing.append(name)
        except DatasetError as err:
            unreadable.append((name, str(err)))
    return present, missing, unreadable


def task_config(task, data_dir, runs_dir):
    """The ``runs.RunConfig`` of a V2S (any source) / TF_a / FCN task: the run defaults plus the task's settings."""
    mode, arch = METHOD_SETTINGS[task["method"]]
    # resume: a task killed with its sweep continues from its last finished epoch when the sweep is rerun.
    values = dict(dataset=task["dataset"], data_dir=data_dir, mode=mode, arch=arch, seed=task["seed"],
                  epochs=task["epochs"], verbose=0, out=os.path.join(runs_dir, task["key"]), resume=True,
                  **task["config"])
    if task.get("source_weights"):
        values["source_weights"] = task["source_weights"]
    values.update(task.get("settings") or {})
    return runs.RunConfig(**values)


def run_task(task, data_dir, runs_dir):
    """Run one task and return its record (accuracy, validation loss, wall and CPU time).

    ``cpu_seconds`` is the process's CPU time for the task (all its threads): unlike wall time it does not grow when
    other work shares the machine, so it is the cost figure to compare across runs. A task that raises does not end
    the sweep: its record says ``failed`` (the error in one line) and holds no accuracy; a later sweep on the same
    store runs it again.
    """
    start, cpu_start = time.time(), time.process_time()
    try:
        if task["method"] == "MiniRocket":
            record = _run_minirocket(task, data_dir)
        elif task["method"] == "LP":
            record = _run_linear_probe(task, data_dir)
        else:
            from utils import resume_state

            config = task_config(task, data_dir, runs_dir)
            command = f"python reproduce.py (task {task['key']})"
            # A task killed with its sweep continues here: its CPU time then covers only this part of the run.
            earlier = (resume_state(os.path.join(config.out, "ckpt")) or {}).get("epoch", 0)
            # A sweep's runs are quiet: their results go to the store, its progress bar counts them.
            with contextlib.redirect_stdout(io.StringIO()):
                summary = runs.train(runs.load_data(config), config, command=command).summary
            record = {"test_accuracy": summary["test_accuracy"], "val_accuracy": summary["val_accuracy"],
                      "val_loss": summary["val_cross_entropy"], "classes": summary["classes"]}
            if config.val_on_test:
                # the reference code's score: the best test accuracy of any epoch (history's val_* is the test set)
                record["best_test_accuracy"] = max(runs.Run(config.out, summary).history()["val_accuracy"])
            if task["method"] in ARCHITECTURES:
                record["head"] = summary["config"]["head"]
                record["encoding"] = summary["config"]["encoding"]
            if earlier:
                record["resumed_after_epoch"] = earlier
    except runs.RunInterrupted:
        # Ctrl-C or a kill during a task stops the sweep (its checkpoint is kept; a rerun resumes it), rather than
        # passing for the task's failure and starting the next one.
        raise KeyboardInterrupt from None
    except Exception as err:  # noqa: BLE001  (any failure of one task is recorded, the sweep goes on)
        message = str(err).splitlines()[0] if str(err) else ""
        record = {"failed": f"{type(err).__name__}: {message}"[:300]}
        print(f"reproduce.py: {task['method']} on {task['dataset']} (seed {task['seed']}) failed: "
              f"{record['failed']}", file=sys.stderr)
    record.update({k: task[k] for k in ("key",) + TASK_FIELDS if k in task},
                  wall_seconds=round(time.time() - start, 2), cpu_seconds=round(time.process_time() - cpu_start, 2))
    return record


# Settings a run folder may differ in from the grid's defaults and still be the same experiment.
RUN_ONLY_SETTINGS = runs.OUTPUT_SETTINGS | {"dataset", "seed", "epochs", "mode", "arch", "source_weights"}


def record_from_run(folder, settings=None):
    """The store record of a finished ``v2s_main.py`` run folder (its summary.json), keyed like the grid's task.

    Lets a sweep reuse runs made outside reproduce.py (e.g. scripts/run_ucr19.sh). Raises ValueError naming the
    setting when the run is not one the grid would make: default settings (or, for a V2S run, the defaults with
    ``settings`` as ``--settings`` gives them, e.g. {"head": "mapping"}), or the paper grid's dropout x m, with the
    shipped source weights (or none, for FCN).
    """
    path = os.path.join(folder, "summary.json")
    if not os.path.isfile(path):
        raise ValueError(f"{folder}: no summary.json (not a finished v2s_main.py run)")
    summary = runs.read_summary(path)
    config = summary["config"]
    method = METHOD_OF_RUN.get((config["mode"], config["arch"]))
    if method is None:
        raise ValueError(f"{path}: mode {config['mode']!r} with {config['arch']} is not a method of the grid")
    defaults = dataclasses.asdict(runs.RunConfig(mode=config["mode"], arch=config["arch"]).validated())
    shipped = [os.path.realpath(p) for p in runs.source_paths(defaults["source_weights"])]
    if method != "FCN" and [os.path.realpath(os.path.join(REPO, p))
                            for p in runs.source_paths(config["source_weights"])] != shipped:
        raise ValueError(f"{path}: source weights {config['source_weights']} are not the shipped ones")
    settings = dict(settings or {}) if method in ARCHITECTURES else {}
    defaults.update(settings)
    # A run of another output layer is compared with that layer's companions (encoding, head fit, learning rate,
    # the tone's parameters): the paper grid's label mapping brings zero padding and lr 0.01 with it.
    head = config.get("head", defaults["head"])
    companions = dataclasses.asdict(runs.RunConfig(mode=config["mode"], arch=config["arch"],
                                                   **{**settings, "head": head}).validated())
    defaults.update({k: companions[k] for k in (*runs.HEAD_DEFAULTS["layers"], *runs.TONE_DEFAULTS)})
    differ = sorted(k for k in defaults if k not in RUN_ONLY_SETTINGS and config.get(k) != defaults[k])
    paper = paper_config(config["dr"], config["seg"])
    if differ and (settings or set(differ) - set(paper) or config.get("head") != "mapping"
                   or not config.get("val_on_test") or config["seg"] not in (0, *PAPER_SEGMENTS)):
        raise ValueError(f"{path}: not a grid run, settings differ from the defaults: " +
                         ", ".join(f"{k}={config.get(k)!r} (default {defaults[k]!r})" for k in differ))
    task = {"dataset": summary["dataset"], "method": method, "seed": config["seed"], "epochs": config["epochs"],
            "config": paper if differ else {}}
    if settings:
        task["settings"] = settings
    output = {"head": config["head"], "encoding": config["encoding"]} if method in ARCHITECTURES else {}
    if is_paper_protocol(task):
        output["best_test_accuracy"] = max(runs.Run(folder, summary).history()["val_accuracy"])
    return dict(task, **output, key=run_key(task), test_accuracy=summary["test_accuracy"],
                val_accuracy=summary["val_accuracy"], val_loss=summary["val_cross_entropy"],
                classes=summary["classes"], wall_seconds=summary["wall_seconds"], imported_from=path)


def default_output(method):
    """{"head", "encoding"}: how today's defaults read the classes and encode the series for a V2S ``method`` or
    LP (which reads the features of the default V2Sa head, on the default encoding)."""
    mode, arch = METHOD_SETTINGS.get(method, METHOD_SETTINGS["V2Sa"])
    config = runs.RunConfig(mode=mode, arch=arch).output_resolved()
    return {"head": config.head, "encoding": config.encoding}


# What a record written before a default setting existed used: V2S runs read the classes through the label mapping
# from zero-padded series; LP read the attention vector and logits of the zero-padded series.
EARLIER_OUTPUT = {"V2S": {k: SETTINGS_BEFORE_THEY_EXISTED[k] for k in ("head", "encoding")},
                  "LP": {"head": "attention", "encoding": "pad"}}


def check_store_output(records, tasks, store_path):
    """Refuse to add default-settings V2S or LP runs to a store whose default runs read the classes, or encode the
    series, another way than today's defaults.

    A default run's key names neither, so after a default changes a sweep on an old store would count the old runs
    as done and tabulate them under today's name. Records made before a setting existed carry no value for it
    (``EARLIER_OUTPUT`` says what they used)."""
    plain = {(t["method"], t.get("source_weights")) for t in tasks
             if (t["method"] in ARCHITECTURES or t["method"] == "LP") and not t["config"] and not t.get("settings")}
    for method, source in sorted(plain, key=str):
        today = default_output(method)
        earlier = EARLIER_OUTPUT["LP" if method == "LP" else "V2S"]
        for setting, value in today.items():
            older = {r.get(setting, earlier[setting]) for r in records
                     if r["method"] == method and "failed" not in r and not r.get("config") and not r.get("settings")
                     and r.get("source_weights") == source} - {value}
            if older:
                raise UsageError(f"--store {store_path}: its {method} runs under default settings have "
                                 f"{setting}={older.pop()}, today's default is {setting}={value}; start a new store "
                                 "(--store) so the two are not mixed")


def import_runs(paths, store, settings=None):
    """Add the finished run folders under ``paths`` (run folders or folders of them) to the store; returns the count.

    ``settings``: the run settings of the grid the runs belong to (``--settings``), as ``record_from_run`` takes
    them. Runs already in the store are skipped; folders that are not grid runs are reported and skipped.
    """
    done = {r["key"] for r in store.load()[0] if "failed" not in r}
    added = 0
    for path in paths:
        folders = [path] if os.path.isfile(os.path.join(path, "summary.json")) else sorted(
            os.path.join(path, d) for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
        for folder in folders:
            try:
                record = record_from_run(folder, settings)
            except ValueError as err:
                print(f"not imported: {err}", file=sys.stderr)
                continue
            if record["key"] not in done:
                store.append(record)
                done.add(record["key"])
                added += 1
    return added


def _run_minirocket(task, data_dir):
    from aeon.classification.convolution_based import MiniRocketClassifier

    from ts_dataloader import load_ucr

    data = load_ucr(task["dataset"], data_dir=data_dir)
    clf = MiniRocketClassifier(random_state=task["seed"])
    # aeon's layout, (n, channels, length): a univariate set gets its one channel axis
    def channels(x):
        return (x[:, None, :] if x.ndim == 2 else x).astype(np.float64)

    clf.fit(channels(data.x_train), data.y_train)
    accuracy = float(np.mean(clf.predict(channels(data.x_test)) == data.y_test))
    return {"test_accuracy": accuracy, "val_accuracy": None, "val_loss": None, "classes": data.num_classes}


def _run_linear_probe(task, data_dir):
    """LP (``engine.linear_probe``): the frozen V2Sa features of V2S's encoded input (the features its head reads),
    a logistic regression on them."""
    from engine.linear_probe import layers_of_head, linear_probe
    from ts_dataloader import load_ucr

    config = runs.RunConfig(dataset=task["dataset"], data_dir=data_dir, seed=task["seed"],
                            source_weights=task.get("source_weights"), **(task.get("settings") or {})).validated()
    data = load_ucr(task["dataset"], data_dir=data_dir)
    result = linear_probe(data, runs.load_source(config), seed=task["seed"], val_split=config.val_split,
                          encoder=runs.encoder_for(config, data.length, channels=data.channels),
                          layers=layers_of_head(config.head))
    return {"test_accuracy": result.test_accuracy, "val_accuracy": result.val_accuracy,
            "val_loss": result.val_cross_entropy, "classes": data.num_classes, "C": result.C,
            "encoding": config.encoding, "head": config.head}


def _run_task_on_node(task, data_dir, runs_dir):
    """``run_task`` on a Ray worker; the record names the node that ran it."""
    import ray

    return dict(run_task(task, data_dir, runs_dir), node=ray.get_runtime_context().get_node_id())


def _init_worker():
    """One TensorFlow thread pool per worker process, so --jobs N does not oversubscribe the cores."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def execute(tasks, store, data_dir, runs_dir, backend="local", jobs=1, address=None):
    """Run the tasks not yet in the store; every result is appended as soon as it arrives."""
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="runs", unit="run")
    if backend == "ray":
        import ray

        # The workers import this repository's modules: ship its code and source weights (not data, results, runs
        # or the venv) to every node. Data and the runs folder are read and written at the paths given, so on a
        # cluster they must be on storage every node mounts at the same path.
        import logging

        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False,
                 logging_level=logging.ERROR,
                 runtime_env={"working_dir": REPO, "excludes": [".venv", "data", "results", "runs", ".git", "img"]})
        remote = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_run_task_on_node)
        pending = [remote.remote(t, os.path.abspath(data_dir), os.path.abspath(runs_dir))
                   for t in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            store.append(ray.get(done[0]))
            bar.update(1)
    elif jobs > 1:
        import functools
        import multiprocessing

        # Leaving the block for any reason (a finished sweep, Ctrl-C, a kill) terminates the workers: a worker left
        # running would keep its run folder locked, and the rerun meant to continue it would be refused.
        with multiprocessing.get_context("spawn").Pool(jobs, initializer=_init_worker) as pool:
            work = functools.partial(run_task, data_dir=data_dir, runs_dir=runs_dir)
            for record in pool.imap_unordered(work, tasks):
                store.append(record)
                bar.update(1)
    else:
        for task in tasks:
            store.append(run_task(task, data_dir, runs_dir))
            bar.update(1)
    bar.close()


# ----------------------------------------------------------------------------------------------------- the table
PAPER_PROTOCOL_LABEL = " (paper protocol, OPTIMISTIC)"


def column_label(record):
    """The table column a record belongs to: its method, with what sets it apart from today's defaults."""
    # Runs of another length are another experiment: labelled apart, never averaged with the 100-epoch runs.
    return (record["method"] + (f" ({record['source_weights']} source)" if record.get("source_weights") else "")
            + "".join(f" ({k}={v})" for k, v in sorted((record.get("settings") or {}).items()))
            + (f" ({record['epochs']} epochs)" if record.get("epochs", DEFAULT_EPOCHS) != DEFAULT_EPOCHS
               and record["method"] in METHOD_SETTINGS else "")
            + (PAPER_PROTOCOL_LABEL if is_paper_protocol(record) else ""))


def select(records):
    """{(dataset, method): [test accuracy per seed]}, keeping per seed the configuration of lowest validation loss.

    Runs of the paper protocol form a column of their own (``PAPER_PROTOCOL_LABEL``), scored as the reference code
    scored them: per seed the configuration of the best test accuracy of any epoch, and that accuracy. Failed tasks
    are left out (``failures`` lists them).
    """
    best = {}
    for r in records:
        if "failed" in r:
            continue
        method = column_label(r)
        accuracy, score = r["test_accuracy"], r["val_loss"] if r["val_loss"] is not None else 0.0
        if is_paper_protocol(r):
            accuracy = r["best_test_accuracy"]
            score = -accuracy
        group = (r["dataset"], method, r["seed"])
        if group not in best or score < best[group][0]:
            best[group] = (score, accuracy, r.get("classes"))
    out = {}
    for (dataset, method, _), (_, acc, _) in sorted(best.items()):
        out.setdefault((dataset, method), []).append(100.0 * acc)
    return out


def failures(records):
    """The failed tasks that no later record of the same key replaced: [(dataset, method, seed, error)]."""
    done = {r["key"] for r in records if "failed" not in r}
    latest = {r["key"]: r for r in records if "failed" in r and r["key"] not in done}
    return sorted((r["dataset"], column_label(r), r["seed"], r["failed"]) for r in latest.values())


def mpce(errors_and_classes):
    """Mean per-class error: mean over datasets of error% / classes (recomputed; the paper's own do not follow)."""
    return float(np.mean([e / c for e, c in errors_and_classes])) if errors_and_classes else None


def summary_rows(values, classes, keep):
    """Mean, median and MPCE of a {dataset: accuracy %} column over the datasets ``keep`` admits."""
    names = [d for d in values if keep(d)]
    acc = [values[d] for d in names]
    if not acc:
        return None, None, None
    return float(np.mean(acc)), float(np.median(acc)), mpce([(100 - values[d], classes[d]) for d in names])


def wins(ours, reference):
    """(wins, ties, losses) of column ``ours`` against ``reference`` on their shared datasets (ties within 0.005)."""
    shared = [d for d in ours if d in reference and reference[d] is not None]
    w = sum(ours[d] > reference[d] + 5e-3 for d in shared)
    t = sum(abs(ours[d] - reference[d]) <= 5e-3 for d in shared)
    return w, t, len(shared) - w - t


# Reference columns: (label, file, column); the provenance of each is in the table's footnote.
REFERENCE_COLUMNS = (("paper SOTA", PAPER_TABLE, "sota"), ("paper V2Sa", PAPER_TABLE, "v2s_a"),
                     ("paper TF_a", PAPER_TABLE, "tf_a"), ("HC2 s0 (published)", PUBLISHED_BASELINES, "hc2_s0"))
# Shown only beside a V2Su column of our own, so the usual table stays as wide as it was.
PAPER_V2SU = ("paper V2Su", PAPER_TABLE, "v2s_u")


def reference_columns(datasets, references=REFERENCE_COLUMNS):
    """{label: {dataset: accuracy %}} of the published columns for ``datasets`` (blank cells left out)."""
    columns = {}
    for label, path, column in references:
        rows = paper_rows(path)
        columns[label] = {d: float(rows[d][column]) for d in datasets if d in rows and rows[d].get(column)}
    return columns


def build_table(records, references=REFERENCE_COLUMNS):
    """Markdown text and CSV rows of the Table 2 comparison."""
    chosen = select(records)
    failed = failures(records)
    failed_cells = {(d, m) for d, m, _, _ in failed}
    datasets = sorted({d for d, _ in chosen} | {d for d, _ in failed_cells}, key=str.lower)
    labels = {m for _, m in chosen} | {m for _, m in failed_cells}
    methods = [m for m in METHODS if m in labels] + sorted(labels - set(METHODS))
    classes = {r["dataset"]: r["classes"] for r in records if r.get("classes") is not None}
    if any(r["method"] == "V2Su" for r in records):
        references = tuple(references) + (PAPER_V2SU,)
    # Published columns with no cell among these sets (a store of UEA sets) are left out.
    columns = {label: cells for label, cells in reference_columns(datasets, references).items() if cells}
    refs = list(columns)
    columns.update({m: {d: float(np.mean(chosen[(d, m)])) for d in datasets if (d, m) in chosen} for m in methods})
    header = ["dataset", "C"] + refs + methods
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    csv_rows = []
    for d in datasets:
        cells = [d + (" (*)" if d in ARTEFACTS else ""), str(classes.get(d, ""))]
        cells += [f"{columns[c][d]:.2f}" if d in columns[c] else "" for c in refs]
        for m in methods:
            runs = chosen.get((d, m))
            if not runs:
                cells.append("failed" if (d, m) in failed_cells else "")
                continue
            cells.append(f"{np.mean(runs):.2f}" + (f" +- {np.std(runs):.2f}" if len(runs) > 1 else ""))
        lines.append("| " + " | ".join(cells) + " |")
        csv_rows.append(dict(zip(header, cells)))
    subsets = (("all", lambda d: True),) + ((("without (*)", lambda d: d not in ARTEFACTS),)
                                             if set(ARTEFACTS) & set(datasets) else ())
    for label, keep in subsets:
        stats = {c: summary_rows(columns[c], classes, lambda d: keep(d) and d in classes) for c in refs + methods}
        for i, name in enumerate(("mean", "median", "MPCE")):
            cells = [f"**{name}, {label}**", ""] + [
                "" if stats[c][i] is None else f"{stats[c][i]:.2f}" for c in refs + methods]
            lines.append("| " + " | ".join(cells) + " |")
    # What each column cost: every run's wall time, all configurations and seeds of a column (on whatever machine
    # and load each ran; cpu_seconds in the store is the load-free figure).
    hours = {m: sum(r.get("wall_seconds") or 0.0 for r in records if "failed" not in r and column_label(r) == m)
             / 3600 for m in methods}
    lines.append("| " + " | ".join(["**wall hours, all runs**", ""] + [""] * len(refs)
                                   + [f"{hours[m]:.2f}" for m in methods]) + " |")
    lines.append("")
    for m in methods:
        for ref in ("paper SOTA", "MiniRocket"):
            if ref != m and ref in columns and set(columns[m]) & set(columns[ref]):
                w, t, l = wins(columns[m], columns[ref])
                lines.append(f"- {m} vs {ref}: {w} wins, {t} ties, {l} losses")
    protocol = [r for r in records if is_paper_protocol(r) and "failed" not in r]
    for m in (m for m in methods if m.endswith(PAPER_PROTOCOL_LABEL) and "paper V2Sa" in columns):
        lines += paper_protocol_lines(m, columns, protocol)
    if failed:
        lines.append("")
        lines.append("Failed tasks (a rerun on this store tries them again):")
        lines += [f"- {m} on {d}, seed {seed}: {error}" for d, m, seed, error in failed]
    absent = [d for d in paper_rows(PAPER_TABLE) if d not in datasets]
    if absent and len(absent) < len(datasets):  # not for stores of other sets (UEA), which would list all 30
        lines.append("")
        lines.append(f"The paper's sets with no run in this store ({len(absent)}): {', '.join(absent)}; every mean "
                     "above is over the rows shown, the paper's columns included.")
    lines.append("")
    if refs:
        lines.append("(*) FordA, FordB, Lightning2, Wafer: label-folding artefacts in the paper (reported there as "
                     "100%). MPCE = mean over datasets of error% / classes, recomputed from the rows. Paper columns: "
                     "reference/paper_table2.csv (the paper's Table 2). HC2 s0: HIVE-COTE 2 on the default UCR split "
                     "as published (timeseriesclassification.com reference results, reference/"
                     "published_baselines.csv), not run here. Every other column is a run recorded in the store.")
    else:
        lines.append("MPCE = mean over datasets of error% / classes. Every column is a run recorded in the store.")
    return "\n".join(lines), csv_rows, columns


def paper_protocol_lines(method, columns, records):
    """What a paper-protocol column says against the paper's V2Sa: the grid it ran, wins, and both means over the
    sets both have (with and without the artefacts), since it may hold fewer rows than the others."""
    ours, paper = columns[method], columns["paper V2Sa"]
    shared = [d for d in ours if d in paper]
    dropouts = sorted({r["config"]["dr"] for r in records})
    segments = sorted({r["config"]["seg"] for r in records})
    seeds = sorted({r["seed"] for r in records})
    w, t, l = wins(ours, paper)
    lines = ["", f"{method}: the reference code's way (label mapping, zero padding, trained on the whole training "
             "set, the best test accuracy of any epoch, the best configuration per set and seed); configurations "
             f"run: dropout {dropouts} x m {segments} (m 0: as many copies as fit, at most 10), seeds {seeds}; the "
             f"paper's grid is dropout {list(PAPER_DROPOUTS)} x m {PAPER_SEGMENTS[0]}..{PAPER_SEGMENTS[-1]} and 10 runs. "
             f"Against the paper's V2Sa: "
             f"{w} wins, {t} ties, {l} losses."]
    # The honest run of the same readout (the paper's label mapping), when the store has it: how much of its gap to
    # the paper the protocol alone closes.
    honest = columns.get(method[:-len(PAPER_PROTOCOL_LABEL)] + " (head=mapping)", {})
    clean = [d for d in shared if d not in ARTEFACTS]
    for label, keep in (("all", shared), ("without (*)", clean if len(clean) < len(shared) else [])):
        if not keep:
            continue
        mean_ours, mean_paper = np.mean([ours[d] for d in keep]), np.mean([paper[d] for d in keep])
        line = f"- over the {len(keep)} sets both have ({label}): ours {mean_ours:.2f}, the paper's {mean_paper:.2f}"
        if all(d in honest for d in keep):
            mean_honest = np.mean([honest[d] for d in keep])
            gap = mean_paper - mean_honest
            line += (f"; the honest run of the same readout {mean_honest:.2f}: the protocol closes "
                     f"{mean_ours - mean_honest:.2f} of its {gap:.2f}-point gap"
                     + (f" ({100 * (mean_ours - mean_honest) / gap:.0f}%)" if gap > 0 else ""))
        lines.append(line)
    return lines


def plot_scatter(columns, path):
    """Our V2Sa against the paper's, one point per dataset both have, into ``path``; returns whether it drew one.

    A store with no dataset of the paper's Table 2 (sets the paper never ran) gets no plot rather than an empty one.
    """
    # The default V2Sa runs, or a store's only V2Sa column under settings (e.g. "V2Sa (head=mapping)").
    labels = [c for c in columns if c == "V2Sa" or c.startswith("V2Sa (")]
    label = "V2Sa" if "V2Sa" in labels else labels[0] if len(labels) == 1 else None
    ours = columns.get(label, {})
    shared = [d for d in ours if d in columns.get("paper V2Sa", {})]
    if not shared:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for d in shared:
        colour = "tab:red" if d in ARTEFACTS else "tab:blue"
        ax.scatter(columns["paper V2Sa"][d], ours[d], color=colour)
        ax.annotate(d, (columns["paper V2Sa"][d], ours[d]), fontsize=6)
    ax.plot([0, 100], [0, 100], color="grey", lw=0.8)
    ax.set(xlabel="paper V2Sa test accuracy (%)", ylabel=f"our {label} test accuracy (%)",
           title="V2Sa: ours vs paper (red: paper artefacts)", xlim=(0, 101), ylim=(0, 101))
    fig.tight_layout()
    from utils import save_figure

    save_figure(fig, path, dpi=110)
    return True


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("V2S_UCR_DIR"), help="UCR archive folder (plain or .gz).")
    p.add_argument("--datasets", nargs="+", default=None,
                   help="Dataset names, or 'all' for every dataset in --data-dir. Default: the 30 datasets of the "
                        "paper's Table 2.")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=["V2Sa", "TF_a", "MiniRocket"],
                   help="V2Sa / V2Su / V2Sr / V2St: V2S with today's defaults and that source; TF_a: the transfer "
                        "baseline; FCN: from scratch; LP: "
                        "the frozen-feature control (a logistic regression on the frozen V2Sa's attention vector and "
                        "logits, no program; any number of classes); MiniRocket: aeon's (optional extra).")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--protocol", choices=("default", "paper"), default="default",
                   help="default: honest, each method once per seed with today's defaults; paper: the reference "
                        "code's way for V2S (label mapping, the dropout x m grid, best test accuracy of any epoch; "
                        "labelled OPTIMISTIC).")
    p.add_argument("--dropouts", nargs="+", type=float, default=list(PAPER_DROPOUTS),
                   help="The paper protocol's dropouts on delta (default: the paper's grid, "
                        f"{' '.join(map(str, PAPER_DROPOUTS))}).")
    p.add_argument("--segments", nargs="+", type=int, default=list(PAPER_SEGMENTS),
                   help="The paper protocol's copy counts m (default: the paper's grid, 1 to 10; 0: as many as fit "
                        "in one second, at most 10).")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                   help=f"Epochs of every trained task (default {DEFAULT_EPOCHS}, the paper's); runs of another "
                        "length are tabulated apart.")
    p.add_argument("--source-weights", default=None, help="Passed to v2s_main.py (e.g. 'random' for a control).")
    p.add_argument("--settings", nargs="+", metavar="NAME=VALUE", default=None,
                   help="Run settings for the V2S tasks (any source), as v2s_main.py names them (e.g. head=attention "
                        "map-type=iterative znorm=true); they become part of each task's key and its label in "
                        "the table.")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--jobs", type=int, default=1, help="Local worker processes (one TensorFlow thread each).")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray).")
    p.add_argument("--store", default=DEFAULT_STORE,
                   help="JSON-lines results store (default runs/reproduce/runs.jsonl; the committed ones under "
                        "results/reproduce/ change only when named here). Its runs' folders: runs/<store name>/ "
                        "beside it.")
    p.add_argument("--out", default=None, help="Table prefix (.md, .csv, _scatter.png). Default: the store's path "
                   "without .jsonl (the committed results/table2 is written only when named here).")
    p.add_argument("--table-only", action="store_true", help="Only rebuild the table from the store.")
    p.add_argument("--import-runs", nargs="+", metavar="DIR", default=None,
                   help="Add finished v2s_main.py run folders (or folders of them) made with the grid's settings "
                        "(today's defaults, with --settings if given) to the store instead of running the grid, then "
                        "build the table.")
    return p


def table_prefix(out, store):
    """Where the table goes: ``out`` if given, else beside ``store`` (its path without .jsonl)."""
    return out or os.path.splitext(store)[0]


def runs_folder(store):
    """Where a store's tasks keep their run folders: runs/<store's name> beside it, so two stores in one folder
    never share (or resume) each other's runs."""
    path = os.path.abspath(store)
    return os.path.join(os.path.dirname(path), "runs", os.path.splitext(os.path.basename(path))[0])


def main(argv=None):
    """Run the grid (or import runs / only rebuild the table), then write the table; returns the store's records.

    Bad input (a missing folder, a store without runs, MiniRocket without its extra) is one line on stderr and
    exit code 2; a task that fails is recorded and the sweep goes on.
    """
    args = build_parser().parse_args(argv)
    with cli_errors("reproduce.py"):
        check_args(args)
        try:
            with terminate_as_interrupt():
                return _main(args)
        except KeyboardInterrupt:
            print(f"reproduce.py: interrupted; every finished run is in {args.store}: rerun the same command to "
                  "continue (finished runs are skipped, the runs in flight resume)", file=sys.stderr)
            raise SystemExit(130) from None


# Settings --settings may not change: they have flags of their own, or do not change what is learned.
NOT_SETTINGS = runs.OUTPUT_SETTINGS | {"dataset", "seed", "epochs", "mode", "arch", "source_weights"}


def parse_settings(pairs):
    """``--settings`` NAME=VALUE pairs -> {RunConfig field: value of the field's type}; a bad pair is one line."""
    fields = {f.name: f for f in dataclasses.fields(runs.RunConfig)}
    settings = {}
    for pair in pairs or ():
        name, sep, text = pair.partition("=")
        key = name.strip().lstrip("-").replace("-", "_")
        if not sep and key in fields and key not in NOT_SETTINGS:
            example = getattr(runs.RunConfig(), key)
            raise UsageError(f"--settings {pair!r}: expected NAME=VALUE; {key} needs a value"
                             + (f" (e.g. {key}={example})" if example is not None else ""))
        if not sep or key not in fields or key in NOT_SETTINGS:
            raise UsageError(f"--settings {pair!r}: expected NAME=VALUE with NAME a run setting of v2s_main.py "
                             f"(e.g. head=attention); {key!r} is not one --settings can change")
        if key in settings:
            raise UsageError(f"--settings names {key} twice ({key}={settings[key]!r} and {pair!r}); give it once")
        kind = fields[key].type  # the field's annotated type (a default of None says nothing of it)
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = text.lower() in ("true", "1")
            else:
                value = kind(text)
        except ValueError:
            raise UsageError(f"--settings {pair!r}: {key} takes a {kind.__name__}, got {text!r}") from None
        settings[key] = value
    return settings


def check_args(args):
    """Refuse a bad flag in one line before any task starts (a sweep of hours must not fail at its first task)."""
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    if any(seed < 0 for seed in args.seeds):
        raise UsageError(f"--seeds must be 0 or more, got {' '.join(map(str, args.seeds))}")
    grid = (list(PAPER_DROPOUTS), list(PAPER_SEGMENTS))
    if args.protocol != "paper" and (args.dropouts, args.segments) != grid:
        raise UsageError("--dropouts and --segments narrow the paper protocol's grid; they need --protocol paper")
    bad = [d for d in args.dropouts if not 0.0 <= d < 1.0]
    if bad:
        raise UsageError(f"--dropouts must lie in [0, 1), got {bad[0]}")
    bad = [m for m in args.segments if not 0 <= m <= runs.MAX_SEGMENTS]
    if bad:
        raise UsageError(f"--segments must lie in 0..{runs.MAX_SEGMENTS} (0: as many copies as fit), got {bad[0]}")
    if args.address and args.backend != "ray":
        raise UsageError("--address names a Ray cluster; it needs --backend ray")
    if args.table_only:
        return
    settings = parse_settings(args.settings)
    for method in () if args.import_runs else args.methods:
        taken = set(settings) if method in ARCHITECTURES else set(settings) & set(LP_SETTINGS) if method == "LP" \
            else set()
        if settings and not taken:
            raise UsageError(f"--settings {' '.join(args.settings)}: {method} takes none of them (V2S methods take "
                             f"every run setting, LP only {', '.join(LP_SETTINGS)}); run {method} in a sweep of its "
                             "own")
    # An import checks its --settings too: a bad value would otherwise only show as every run "not imported".
    for method in (["V2Sa"] if args.import_runs else args.methods):
        if method in METHOD_SETTINGS:  # the run settings of every trained method, as the grid gives them
            task = plan(["Coffee"], [method], args.seeds[:1], "default", args.epochs, args.source_weights,
                        settings)[0]
            task_config(task, args.data_dir, "unused").validated()


def _main(args):
    store = ResultStore(args.store)
    if args.import_runs:
        for path in args.import_runs:
            if not os.path.isdir(path):
                raise UsageError(f"--import-runs {path!r} is not a folder")
        with store.sweep_lock():
            added = import_runs(args.import_runs, store, parse_settings(args.settings))
            print(f"Imported {added} new runs into {args.store}.")
    elif not args.table_only:
        if not args.data_dir or not os.path.isdir(args.data_dir):
            raise UsageError(f"--data-dir {args.data_dir!r} is not a folder (or set $V2S_UCR_DIR)")
        if "MiniRocket" in args.methods:
            try:
                import aeon  # noqa: F401
            except ImportError:
                raise UsageError("MiniRocket needs the optional extra: pip install -r requirements/extra.txt") \
                    from None
        names = datasets_in(args.data_dir) if args.datasets == ["all"] else args.datasets or list(paper_rows())
        present, missing, unreadable = available_datasets(names, args.data_dir)
        if missing:
            print(f"Not in {args.data_dir}, skipped: {', '.join(missing)}")
        for name, reason in unreadable:
            print(f"Unreadable, skipped: {name}: {reason}", file=sys.stderr)
        tasks = plan(present, args.methods, args.seeds, args.protocol, args.epochs, args.source_weights,
                     parse_settings(args.settings), grid=(args.dropouts, args.segments))
        records, problems = store.load()
        for problem in problems:
            print(problem, file=sys.stderr)
        check_store_output(records, tasks, args.store)
        done = {r["key"] for r in records if "failed" not in r}
        todo = [t for t in tasks if t["key"] not in done]
        print(f"{len(tasks)} runs in the grid, {len(tasks) - len(todo)} already in {args.store}, {len(todo)} to run.")
        runs_dir = runs_folder(args.store)
        with store.sweep_lock():
            execute(todo, store, args.data_dir, runs_dir, args.backend, args.jobs, args.address)
    records, problems = store.load()
    for problem in problems:
        print(problem, file=sys.stderr)
    if not records:
        raise UsageError(f"no finished runs in {args.store}")
    text, rows, columns = build_table(records)
    out = table_prefix(args.out, args.store)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".md", "w") as fh:
        fh.write(text + "\n")
    with open(out + ".csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if not plot_scatter(columns, out + "_scatter.png"):
        print("(no scatter plot: the store has no single V2Sa column with a dataset of the paper's Table 2)")
    print(text)
    return records


if __name__ == "__main__":
    tf_setup.quiet_stderr()  # TensorFlow's own log lines stay out of the output (V2S_TF_LOGS=1 shows them)
    main()
