"""Child processes that stop in the middle of a write, for the tests that SIGKILL them.

A SIGKILL runs no handler, no ``finally`` and no ``atexit``: whatever the child
had on disk stays, exactly as after a crash or an OOM kill. Windows has no
signals; ``TerminateProcess`` kills as unconditionally there.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def blocked_child(code: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """Run ``code`` in a fresh interpreter until it prints ``ready``; kill it on the way out."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line != "ready\n":
            proc.wait(timeout=60)
            raise AssertionError(f"the child did not get ready: {proc.communicate()[1]}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def sigkill(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` the way nothing can clean up after, and wait until it is gone."""
    proc.kill()  # SIGKILL; on Windows TerminateProcess, with exit code 1
    assert proc.wait(timeout=60) == (1 if sys.platform == "win32" else -signal.SIGKILL)
