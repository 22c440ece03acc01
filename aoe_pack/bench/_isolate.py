"""One artifact's plaintext, measured in a process of its own.

:func:`plaintext_files` puts an artifact's plaintext into sealed anonymous memory
files (``memfd_create``), checked against the signed SHA-256 on the way;
:func:`run_isolated` hands their descriptors to a fresh
``python -m aoe_pack.bench._child``, which opens them as ``/proc/self/fd/<n>``.
Nothing decrypted ever touches the disk, and the child's peak memory is the
artifact's alone.

Only Linux has memory files and seals. Elsewhere (macOS, Windows) the
artifacts of an unencrypted bundle, whose plaintext is on disk in the bundle
anyway, go to read-only files in a private temporary folder (0700, ours alone)
for the time of the measurement, and the child gets their paths (Windows hands
no descriptors to a child). A process of the same user could change such a
file while it is measured, which a seal forbids; the folder is removed when
the measurement ends, or left behind if the bench itself is killed. An
encrypted bundle is refused there (:func:`aoe_pack.bench.run.bench_bundle`):
its plaintext would reach the disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aoe_pack
from aoe_pack.bench.results import ArtifactResult, Latency, Status
from aoe_pack.bundle.container import ZipEntry
from aoe_pack.bundle.manifest import PayloadFile
from aoe_pack.bundle.verify import OpenedBundle, stream_payload
from aoe_pack.convert.api import Target
from aoe_pack.errors import UsageError

# The child is `python -m aoe_pack.bench._child`, started so that it finds this
# aoe_pack even when it is not installed (a source checkout on sys.path): the
# package's folder goes at the *end* of the child's path, where it can shadow
# nothing, unlike PYTHONPATH, which comes before the standard library.
_PACKAGE_ROOT = str(Path(aoe_pack.__file__).resolve().parent.parent)
_BOOTSTRAP = (
    "import sys, runpy; sys.path.append(sys.argv.pop(1)); "
    "runpy.run_module('aoe_pack.bench._child', run_name='__main__', alter_sys=True)"
)


@dataclass(frozen=True, kw_only=True)
class ArtifactFiles:
    """The payload files of one artifact."""

    runtime: str
    variant: str | None
    files: tuple[tuple[PayloadFile, ZipEntry], ...]
    model: str = ""
    """The model's folder in a feature bundle ("" in a single-model bundle)."""

    @property
    def name(self) -> str:
        name = f"{self.runtime}-{self.variant}" if self.variant else self.runtime
        return f"{self.model}/{name}" if self.model else name


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What every child is asked to do."""

    inputs: list[dict[str, Any]]
    runs: int
    warmup: int
    seed: int
    timeout: float


@dataclass(frozen=True)
class Plaintext:
    """Where the child finds one checked plaintext file: a sealed memory file, or a path."""

    fd: int | None = None
    path: Path | None = None

    def job(self) -> dict[str, Any]:
        return {"fd": self.fd} if self.fd is not None else {"file": str(self.path)}


def memory_files() -> bool:
    """Whether the OS has sealed anonymous memory files (Linux; not macOS or Windows)."""
    try:
        import fcntl
    except ImportError:
        return False
    return hasattr(os, "memfd_create") and hasattr(fcntl, "F_ADD_SEALS")


@contextlib.contextmanager
def plaintext_files(
    bundle: OpenedBundle, group: ArtifactFiles, data_key: bytes | None, pool: ThreadPoolExecutor
) -> Iterator[list[Plaintext]]:
    """The artifact's plaintext, checked against its digest: in sealed memory files where
    the OS has them (Linux), else, unencrypted only, in private files (see the module doc)."""
    if not memory_files():
        if data_key is not None:
            raise UsageError("decrypted models never go to disk; this OS has no memory files")
        with _private_files(bundle, group, pool) as files:
            yield files
        return
    import fcntl

    seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
    fds: list[int] = []
    try:
        for f, e in group.files:
            fd = os.memfd_create(Path(f.path).name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            fds.append(fd)
            stream_payload(bundle, f, e, data_key=data_key, pool=pool, sink=_writer(fd))
            # Sealed: neither the child nor a runtime can change what was checked.
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
        yield [Plaintext(fd=fd) for fd in fds]
    finally:
        for fd in fds:
            os.close(fd)


@contextlib.contextmanager
def _private_files(
    bundle: OpenedBundle, group: ArtifactFiles, pool: ThreadPoolExecutor
) -> Iterator[list[Plaintext]]:
    folder = Path(tempfile.mkdtemp(prefix="aoe-bench-"))  # 0700: ours alone
    paths: list[Path] = []
    try:
        for i, (f, e) in enumerate(group.files):
            paths.append(folder / f"{i}-{Path(f.path).name}")
            with paths[-1].open("xb") as out:
                stream_payload(bundle, f, e, data_key=None, pool=pool, sink=out.write)
            paths[-1].chmod(0o400)  # read-only: a runtime cannot change what was checked
        yield [Plaintext(path=p) for p in paths]
    finally:
        for p in paths:  # Windows removes no read-only file
            with contextlib.suppress(OSError):
                p.chmod(0o600)
        shutil.rmtree(folder, ignore_errors=True)


def _writer(fd: int) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    return write


def run_isolated(
    group: ArtifactFiles, target: Target, files: Sequence[Plaintext], settings: Settings
) -> ArtifactResult:
    """Measure one artifact in a fresh child; a failure there is recorded, not raised."""
    job = {
        "runtime": target.runtime,
        "variant": target.variant,
        "files": [
            {**p.job(), "path": f.path, "role": f.role}
            for p, (f, _) in zip(files, group.files, strict=True)
        ],
        "inputs": settings.inputs,
        "runs": settings.runs,
        "warmup": settings.warmup,
        "seed": settings.seed,
    }
    timeout = settings.timeout
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _BOOTSTRAP, _PACKAGE_ROOT],
            input=json.dumps(job).encode(),
            capture_output=True,
            pass_fds=tuple(p.fd for p in files if p.fd is not None),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return not_run(group, Status.FAILED, f"did not finish within {timeout:.0f} s; stopped")
    try:
        out: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        return not_run(
            group, Status.FAILED, f"the runtime's process died ({how}): {' | '.join(tail)}"
        )
    if not out.get("ok"):
        return not_run(group, Status.FAILED, str(out.get("error")))
    samples = tuple(float(v) for v in out["samplesMs"])
    return ArtifactResult(
        name=group.name,
        runtime=target.runtime,
        variant=group.variant,
        files=tuple(f.path for f, _ in group.files),
        size=sum(f.size for f, _ in group.files),
        status=Status.OK,
        load_ms=float(out["loadMs"]),
        first_load_ms=float(out["firstLoadMs"]),
        first_run_ms=float(out["firstRunMs"]),
        latency=Latency.of(samples),
        runs=len(samples),
        samples_ms=samples,
        peak_mib=None if out.get("peakMiB") is None else float(out["peakMiB"]),
        baseline_mib=None if out.get("baselineMiB") is None else float(out["baselineMiB"]),
        runtime_versions={str(k): str(v) for k, v in out.get("runtimeVersions", {}).items()},
    )


def not_run(group: ArtifactFiles, status: Status, error: str) -> ArtifactResult:
    return ArtifactResult(
        name=group.name,
        runtime=group.runtime,
        variant=group.variant,
        files=tuple(f.path for f, _ in group.files),
        size=sum(f.size for f, _ in group.files),
        status=status,
        error=error,
    )
