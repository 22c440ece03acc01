"""Keep stdout ours: frameworks' output goes to a log, ours to the real streams.

TensorFlow, absl, oneDNN, LiteRT, MNN and ncnn write to file descriptors 1
and 2 from native code, and to ``sys.stdout``/``sys.stderr`` from Python, at
import and while converting. ``--json`` output must stay parseable whatever
they print, and a build's stderr should show aoe-pack's own lines, not 40
lines of framework logging. So the console entry point calls :func:`claim`:

* descriptors 1 and 2 are pointed at a private log file, so nothing native
  reaches the terminal (with ``--verbose``, descriptor 2 stays the real
  stderr: everything frameworks say on stderr is shown);
* ``sys.stdout``/``sys.stderr`` become streams on the *real* descriptors, so
  click (help, usage errors) and aoe-pack's own output reach the user;
* inside :func:`frameworks` (model loading, conversion), ``sys.stdout`` and
  ``sys.stderr`` point at the log too, for the Python-level chatter of the
  frameworks; aoe-pack's :class:`~aoe_pack.cli._output.Output` writes to
  :func:`out` and :func:`err`, which always name the real streams;
* fatal errors (a native crash in-process) still print a traceback to the
  real stderr (``faulthandler``).

Without :func:`claim` (tests calling the click commands in-process) nothing is
redirected, and :func:`out`/:func:`err` are click's current streams.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

QUIET, NORMAL, VERBOSE = -1, 0, 1


@dataclass
class _State:
    out: TextIO | None = None
    err: TextIO | None = None
    err_fd: int | None = None
    log: io.BufferedRandom | None = None
    verbosity: int = NORMAL


_state = _State()


def claim() -> None:
    """Redirect native and framework output away from the user's streams (see module doc)."""
    if _state.log is not None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    out_fd, err_fd = os.dup(1), os.dup(2)
    # Lives as long as the process: it receives every native write to fds 1 and 2.
    log = tempfile.TemporaryFile(prefix="aoe-pack-", suffix=".log")  # noqa: SIM115
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    _state.out = os.fdopen(out_fd, "w", buffering=1, encoding="utf-8", errors="replace")
    _state.err = os.fdopen(
        err_fd, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False
    )
    _state.err_fd, _state.log = err_fd, log
    sys.stdout, sys.stderr = _state.out, _state.err
    faulthandler.enable(file=_state.err)
    _apply()


def set_verbosity(level: int) -> None:
    """NORMAL, QUIET (errors only) or VERBOSE (frameworks' stderr shown too)."""
    _state.verbosity = level
    _apply()


def verbosity() -> int:
    return _state.verbosity


def _apply() -> None:
    if _state.log is None or _state.err_fd is None:
        return
    sys.stderr.flush()
    target = _state.err_fd if _state.verbosity >= VERBOSE else _state.log.fileno()
    os.dup2(target, 2)


def out() -> TextIO:
    """The user's stdout: results and ``--json`` documents only."""
    return _state.out or sys.stdout


def err() -> TextIO:
    """The user's stderr: aoe-pack's progress, warnings and errors."""
    return _state.err or sys.stderr


@contextlib.contextmanager
def frameworks() -> Iterator[None]:
    """A region where ML frameworks run: their Python-level output goes to the log too.

    With ``--verbose`` their stderr (and stdout) is shown on the real stderr;
    stdout is never theirs.
    """
    if _state.log is None:
        yield
        return
    sink: TextIO
    if _state.verbosity >= VERBOSE:
        sink = err()
        with contextlib.redirect_stdout(sink):
            yield
        return
    sink = os.fdopen(os.dup(_state.log.fileno()), "w", buffering=1, errors="replace")
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        sink.close()
