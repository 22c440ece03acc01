"""One artifact in memory, measured in a process of its own.

:func:`in_memory` puts an artifact's plaintext into sealed anonymous memory
files (``memfd_create``), checked against the signed SHA-256 on the way;
:func:`run_isolated` hands their descriptors to a fresh
``python -m aoe_pack.bench._child``, which opens them as ``/proc/self/fd/<n>``.
Nothing decrypted ever touches the disk, and the child's peak memory is the
artifact's alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
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


@contextlib.contextmanager
def in_memory(
    bundle: OpenedBundle, group: ArtifactFiles, data_key: bytes | None, pool: ThreadPoolExecutor
) -> Iterator[list[int]]:
    """The artifact's plaintext in sealed anonymous memory files, checked against its digest."""
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
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def _writer(fd: int) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    return write


def run_isolated(
    group: ArtifactFiles, target: Target, fds: Sequence[int], settings: Settings
) -> ArtifactResult:
    """Measure one artifact in a fresh child; a failure there is recorded, not raised."""
    job = {
        "runtime": target.runtime,
        "variant": target.variant,
        "files": [
            {"fd": fd, "path": f.path, "role": f.role}
            for fd, (f, _) in zip(fds, group.files, strict=True)
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
            pass_fds=tuple(fds),
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
        peak_mib=float(out["peakMiB"]),
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
