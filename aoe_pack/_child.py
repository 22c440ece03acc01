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
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
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
        from aoe_pack.errors import AoePackError

        if isinstance(e, AoePackError):
            result = {"ok": False, "code": e.code, "error": e.message, "hint": e.hint}
        else:
            message = str(e) or type(e).__name__
            result = {"ok": False, "code": None, "error": f"{type(e).__name__}: {message}"}
    sys.stdout.flush()
    with os.fdopen(result_fd, "w") as out:
        json.dump(result, out)
    return 0 if result["ok"] else 1


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
