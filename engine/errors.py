"""How the project reports a bad input: one exception type for the library, one line and exit code 2 for a CLI.

Library code raises ``UsageError`` (or a subclass, e.g. ``ts_dataloader.DatasetError``) with a message that names
the flag or file and what was expected; each CLI wraps its work in ``cli_errors(prog)``, which prints
``prog: error: message`` on stderr and exits with code 2, as argparse does for a bad flag.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def terminate_as_interrupt():
    """Within the block, a kill (SIGTERM, as a scheduler or ``timeout`` sends) stops the work as Ctrl-C does: the
    command's own KeyboardInterrupt handling runs (checkpoints kept, one line saying how to continue)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set a handler
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class UsageError(ValueError):
    """An input the user can fix (a flag, a file); the message names it and says what was expected."""


@contextlib.contextmanager
def cli_errors(prog):
    """Turn the input errors a CLI user can cause into one line on stderr and exit code 2 (as argparse does).

    Caught: ``UsageError`` (and ``ValueError``, its base), ``FileNotFoundError``, ``NotADirectoryError``.
    Set V2S_DEBUG=1 to see the full traceback instead.
    """
    try:
        yield
    except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
        if os.environ.get("V2S_DEBUG"):
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
