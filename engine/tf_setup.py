"""Start-up settings for TensorFlow, and a quiet stderr; every command line imports this module first.

TensorFlow prints its own log lines around a command's output: INFO lines at start-up (oneDNN, CPU features),
absl's C++ lines that ``TF_CPP_MIN_LOG_LEVEL`` does not reach (``failed call to cuInit`` on a machine without a
GPU, grappler's long ``Error in PredictCost()`` warning, XLA's ``Compiled cluster``, absl's notice that it logs
before initialisation), and kapre's ``input_shape`` UserWarning. None of them is about the user's run.

* Importing the module sets ``TF_CPP_MIN_LOG_LEVEL`` to 2 and ``TF_ENABLE_ONEDNN_OPTS`` to 1 (values the user set
  win), ignores kapre's warning and raises the Python ``tensorflow`` logger to errors (retracing notices). TensorFlow turns its oneDNN CPU kernels on by itself only on some Intel CPUs;
  on an AMD EPYC without AVX-512 they made a V2S training step 1.37x faster with V2Sa and 1.61x with V2Su, with the
  same results to float rounding (bench/README.md).
* ``quiet_stderr()`` (called by each command line when run as a program) routes file descriptor 2 through a filter
  that drops absl-format log lines (``I/W/E`` + ``MMDD hh:mm:ss.micros thread file:line]``) and passes everything
  else through unchanged: Python's errors, tracebacks, progress bars, fatal (``F``) lines. ``show_stderr()`` (the
  commands' ``--verbose 2``) or ``V2S_TF_LOGS=1`` in the environment leaves TensorFlow's lines visible.
"""

import atexit
import logging
import os
import re
import select
import threading
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
warnings.filterwarnings("ignore", message="Do not pass an `input_shape`", category=UserWarning)
if not os.environ.get("V2S_TF_LOGS"):
    # TensorFlow's Python-side warnings (tf.function retracing, deprecations), many lines each in a sweep's output,
    # are about TensorFlow's internals, not the run; V2S_TF_LOGS=1 shows them.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)

# TensorFlow's C++ log lines of severity I, W or E (never F): absl's ("W0000 00:00:1796246848.906400  8893
# file.cc:699] ..."), TensorFlow's own ("2026-12-02 21:27:23.434216: E path/file.cc:51] ...") and absl's notice.
TF_LOG_LINE = re.compile(rb"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]\s]+:\d+\]"
                         rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] [^\]\s]+:\d+\]"
                         rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)")
_filter = {}


def _forward(read_fd, out_fd):
    """Copy ``read_fd`` to ``out_fd`` line by line, leaving out TensorFlow's log lines.

    A piece without its line end (a progress bar redrawn with carriage returns) goes out once 0.2 s pass with
    nothing more to read, so bars keep moving.
    """
    pending = b""
    try:
        while True:
            if select.select([read_fd], [], [], 0.2)[0]:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    break
                *complete, pending = re.split(rb"(?<=[\n\r])", pending + chunk)
            else:
                complete, pending = [pending], b""
            for piece in complete:
                if piece and not TF_LOG_LINE.match(piece):
                    os.write(out_fd, piece)
        if pending and not TF_LOG_LINE.match(pending):
            os.write(out_fd, pending)
    except OSError:  # the pipe was closed under us at exit
        pass


def quiet_stderr():
    """Filter TensorFlow's log lines out of this process's stderr (fd 2) from now on; idempotent."""
    if _filter or os.environ.get("V2S_TF_LOGS"):
        return
    try:
        original = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep quiet
        return
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_forward, args=(read_fd, original), daemon=True, name="stderr-filter")
    thread.start()
    _filter.update(original=original, thread=thread, read_fd=read_fd)
    atexit.register(show_stderr)


def show_stderr():
    """Undo ``quiet_stderr``: fd 2 writes straight to the original stderr again (what was filtered so far is
    flushed first)."""
    if not _filter:
        return
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os.dup2(_filter["original"], 2)  # closes the pipe's last write end: the forwarder reads the rest, then stops
    _filter["thread"].join(timeout=2.0)
    if not _filter["thread"].is_alive():  # else a child process still holds the pipe: leave it to the OS
        os.close(_filter["read_fd"])
    os.close(_filter["original"])
    _filter.clear()
