"""Run one job in a fresh Python process, so that a runtime's crash ends only that job.

ML runtimes are native code that can die with a signal (MNN raises SIGFPE on
some pooling layers), abort, hang, or print to stdout. Every run of a
converted artifact therefore happens in a child started by :func:`run_module`:

* the job goes in as JSON on stdin; the result comes back as one JSON object
  on the child's original stdout, which :func:`child_main` keeps for itself
  after pointing file descriptor 1 (every ``printf`` and ``print`` of the
  runtimes) at stderr;
* stderr, the runtime's own log, goes to a file whose tail explains a death;
* a death by signal, an exit without a result or a timeout becomes a
  :class:`ChildOutcome` the caller turns into a named error.

The child runs ``python -c`` with aoe-pack's own folder appended to
``sys.path`` (after the standard library, where it can shadow nothing), so a
source checkout that is not installed works too. It inherits the environment,
so plugins on ``PYTHONPATH`` are found there as in the parent.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_BOOTSTRAP = (
    "import sys, runpy; sys.path.append(sys.argv.pop(1)); "
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)"
)
LOG_TAIL_LINES = 12
_ABSL_INFO = re.compile(
    r"I\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl|To enable the following instr"
    # TensorFlow Lite's converter warns of every option it does not use, on every run.
    r"|W\d{4} .*\] Ignored (output_format|drop_control_dependency)\.$"
)
_LOG_TAIL_BYTES = 64 << 10


@dataclass(frozen=True, kw_only=True)
class ChildOutcome:
    """How a child ended: its JSON result, or why there is none."""

    result: dict[str, Any] | None
    """The child's result object; None when it died, hung or printed none."""
    returncode: int
    timed_out: bool
    log_tail: str
    """The last lines the child (its runtime included) wrote to stderr or stdout."""

    @property
    def death(self) -> str | None:
        """Why no result came back, in words (None when one did)."""
        if self.timed_out:
            return "did not finish in time and was stopped"
        if self.result is not None:
            return None
        if self.returncode < 0:
            return f"crashed with {describe_exit(self.returncode)}"
        return f"exited with {describe_exit(self.returncode)} without a result"


def describe_exit(returncode: int) -> str:
    """``signal SIGFPE (floating-point exception)``, or the exit code."""
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode)
        except ValueError:
            return f"signal {-returncode}"
        what = signal.strsignal(sig) or ""
        return f"signal {sig.name} ({what.lower()})" if what else f"signal {sig.name}"
    if returncode > 255:  # Windows reports a crash as an NTSTATUS code
        return f"exit code {returncode:#x}"
    return f"exit code {returncode}"


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _LOG_TAIL_BYTES))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    # absl's INFO lines ("I0000 00:00:...") and TensorFlow's start-up banners say what
    # went well; keep what may explain a death.
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip() and not _ABSL_INFO.match(ln)]
    return "\n".join(lines[-LOG_TAIL_LINES:])


def run_module(
    module: str,
    job: Mapping[str, Any],
    *,
    timeout: float,
    pass_fds: Sequence[int] = (),
    log_dir: Path | None = None,
) -> ChildOutcome:
    """Run ``python -m module`` (a :func:`child_main` program) on ``job``."""
    with tempfile.NamedTemporaryFile(
        prefix="child-", suffix=".log", dir=log_dir, delete=False
    ) as log:
        log_path = Path(log.name)
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _BOOTSTRAP, _PACKAGE_ROOT, module],
                input=json.dumps(job).encode(),
                stdout=subprocess.PIPE,
                stderr=log,
                pass_fds=tuple(pass_fds),
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ChildOutcome(
                result=None, returncode=-9, timed_out=True, log_tail=_tail(log_path)
            )
    try:
        tail = _tail(log_path)
    finally:
        with contextlib.suppress(OSError):
            log_path.unlink()
    result: dict[str, Any] | None = None
    with contextlib.suppress(ValueError):
        parsed = json.loads(proc.stdout)
        if isinstance(parsed, dict):
            result = parsed
    return ChildOutcome(result=result, returncode=proc.returncode, timed_out=False, log_tail=tail)


def child_main(handler: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """The child's side: read the job, run ``handler``, write its result; return the exit code.

    Native output is sent to stderr before anything is imported, so nothing a
    runtime prints can corrupt the result. An :class:`AoePackError` becomes
    ``{"ok": false, "code", "error", "hint"}``; any other exception is reported
    with its type (and its traceback in the log).
    """
    result_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        job = json.load(sys.stdin)
        result = {"ok": True, **handler(job)}
    except Exception as e:  # noqa: BLE001 - reported to the parent, which names the failure
        traceback.print_exc()
        result = _error_result(e)
    sys.stdout.flush()
    with os.fdopen(result_fd, "w") as out:
        json.dump(result, out)
    return 0 if result["ok"] else 1


def _error_result(e: Exception) -> dict[str, Any]:
    from aoe_pack.errors import AoePackError

    if isinstance(e, AoePackError):
        return {"ok": False, "code": e.code, "error": e.message, "hint": e.hint}
    message = str(e) or type(e).__name__
    return {"ok": False, "code": None, "error": f"{type(e).__name__}: {message}"}


def result_of(
    outcome: ChildOutcome,
    *,
    what: str,
    crash: Callable[[str], Exception],
    timeout: float,
) -> dict[str, Any]:
    """The child's result, or the error that says why there is none.

    A death or a timeout becomes ``crash(message)`` (``what`` names the work,
    and the runtime's last lines follow); an error the child reported becomes
    the aoe-pack error of its code (the child's own message, prefixed by ``what``).
    """
    from aoe_pack.errors import error_for_code

    log = f"\nits last output:\n{outcome.log_tail}" if outcome.log_tail else ""
    if outcome.timed_out:
        return _raise(crash(f"{what} did not finish within {timeout:.0f} s and was stopped{log}"))
    result = outcome.result
    if result is None:
        return _raise(crash(f"{what}: the process {outcome.death}{log}"))
    if not result.get("ok"):
        code, hint = result.get("code"), result.get("hint")
        raise error_for_code(
            code if isinstance(code, str) else None,
            f"{what}: {result.get('error') or 'failed'}",
            hint=hint if isinstance(hint, str) else None,
        )
    return result


def _raise(error: Exception) -> dict[str, Any]:
    raise error


class Worker:
    """A child process that serves jobs one at a time until it dies, then is started anew.

    For work whose set-up dominates (importing TensorFlow takes seconds): one
    process serves every job of a build, so the import is paid once, while a
    crash still fails only the job that was running. Jobs and results are one
    JSON line each on the child's stdin and original stdout (:func:`serve`);
    the child's other output goes to a log whose tail explains a death.
    """

    def __init__(self, module: str, *, log_dir: Path | None = None) -> None:
        import threading

        self._module = module
        self._log_dir = log_dir
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._log: Path | None = None
        self._lines: Any = None

    def _start(self) -> subprocess.Popen[bytes]:
        import queue
        import threading

        with tempfile.NamedTemporaryFile(
            prefix="worker-", suffix=".log", dir=self._log_dir, delete=False
        ) as log:
            self._log = Path(log.name)
            proc = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, _PACKAGE_ROOT, self._module, "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        lines: queue.Queue[bytes] = queue.Queue()

        def read(stream: Any = proc.stdout) -> None:
            for line in iter(stream.readline, b""):
                lines.put(line)
            lines.put(b"")  # end of stream: the child is gone

        self._reader = threading.Thread(target=read, daemon=True, name=f"{self._module}-reader")
        self._reader.start()
        self._proc, self._lines = proc, lines
        return proc

    def _reap(self) -> int:
        """Wait for the ended child, let its reader see the end, close the pipes."""
        assert self._proc is not None
        returncode = self._proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self._proc = None
        return returncode

    def run(self, job: Mapping[str, Any], *, timeout: float) -> ChildOutcome:
        """Serve ``job`` (starting the process if it is not running)."""
        import queue

        with self._lock:
            proc = self._proc if self._proc and self._proc.poll() is None else self._start()
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps(job).encode() + b"\n")
                proc.stdin.flush()
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self._stop()
                return ChildOutcome(
                    result=None, returncode=-9, timed_out=True, log_tail=self._tail()
                )
            except OSError:  # the child died before it read the job
                line = b""
            if not line:
                returncode = self._reap()
                return ChildOutcome(
                    result=None, returncode=returncode, timed_out=False, log_tail=self._tail()
                )
            result: dict[str, Any] | None = None
            with contextlib.suppress(ValueError):
                parsed = json.loads(line)
                result = parsed if isinstance(parsed, dict) else None
            return ChildOutcome(result=result, returncode=0, timed_out=False, log_tail="")

    def _tail(self) -> str:
        return _tail(self._log) if self._log else ""

    def _stop(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(OSError):
                self._proc.kill()
            self._reap()

    def close(self) -> None:
        """End the child (at the end of a build, or at exit) and remove its log."""
        with self._lock:
            if self._proc is not None:
                with contextlib.suppress(OSError):
                    assert self._proc.stdin is not None
                    self._proc.stdin.close()  # end of jobs: the child leaves its loop
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                self._reap()
            if self._log is not None:
                with contextlib.suppress(OSError):
                    self._log.unlink()
                self._log = None


def serve(handler: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """The :class:`Worker` child's side: one JSON job per stdin line, one result per line."""
    result_fd = os.dup(1)
    os.dup2(2, 1)
    with os.fdopen(result_fd, "w") as out:
        for line in sys.stdin:
            try:
                result = {"ok": True, **handler(json.loads(line))}
            except Exception as e:  # noqa: BLE001 - reported to the parent as for child_main
                traceback.print_exc()
                result = _error_result(e)
            sys.stdout.flush()
            out.write(json.dumps(result) + "\n")
            out.flush()
    return 0
