"""Measure one artifact in a process of its own: ``python -m aoe_pack.bench._child``.

A fresh process per artifact makes its peak memory (``VmHWM``) belong to that
artifact and its runtime alone, and keeps one runtime's threads, allocators
and global state from colouring the next one's figures.

The parent passes the job as JSON on stdin and the artifact's files as
inherited file descriptors of anonymous in-memory files (``memfd``); the
runtime opens them as ``/proc/self/fd/<n>``, so no plaintext model ever
exists as a file on disk. Where there are no memory files (macOS, Windows)
the parent passes paths of private files instead (:mod:`._isolate`). The
result goes back as one JSON object on the original stdout; anything the
runtimes print goes to stderr instead, so native logging cannot corrupt it.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")


def _status_mib(key: str) -> float | None:
    """``VmRSS``/``VmHWM`` from /proc/self/status, in MiB."""
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    return None


def _peak_mib() -> float | None:
    """This process's peak resident memory: /proc (Linux), getrusage (macOS, the BSDs),
    psutil's peak working set (Windows, which has neither); None without any."""
    peak = _status_mib("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource
    except ImportError:
        return _peak_wset_mib()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux and the BSDs report KiB, macOS bytes.
    return maxrss / (1 << 20) if sys.platform == "darwin" else maxrss / 1024


def _peak_wset_mib() -> float | None:
    try:  # the convert extra's, which every runtime comes with
        psutil = importlib.import_module("psutil")
    except ImportError:
        return None
    peak = getattr(psutil.Process().memory_info(), "peak_wset", None)
    return None if peak is None else float(peak) / (1 << 20)


def _local(file: Mapping[str, Any]) -> Path:
    """The artifact file as the parent handed it: an inherited memory file, or a path."""
    return Path(f"/proc/self/fd/{file['fd']}") if "fd" in file else Path(file["file"])


def _versions_of(modules: set[str]) -> dict[str, str]:
    """Distribution versions of the top-level modules in ``modules``."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    tops = {m.partition(".")[0] for m in modules} - {"aoe_pack"}
    owners = packages_distributions()
    found: dict[str, str] = {}
    for top in sorted(tops):
        for dist in owners.get(top, ()):
            try:
                found[dist] = version(dist)
            except PackageNotFoundError:
                continue
    return found


def measure(job: Mapping[str, Any]) -> dict[str, Any]:
    """Load the artifact twice (cold, then warm), warm it up, time ``runs`` inferences."""
    from aoe_pack.config.model import TensorSpec
    from aoe_pack.convert.api import Artifact, ArtifactFile, SourceModel, Target
    from aoe_pack.convert.parity import sample_inputs
    from aoe_pack.convert.registry import converters

    runs, warmup = int(job["runs"]), int(job["warmup"])
    conv = converters()[job["runtime"]]
    artifact = Artifact(
        target=Target(runtime=job["runtime"], variant=job["variant"]),
        files=tuple(
            ArtifactFile(local=_local(f), bundle_path=f["path"], role=f["role"])
            for f in job["files"]
        ),
    )
    specs = tuple(
        TensorSpec(
            name=t["name"],
            dtype=t["dtype"],
            shape=tuple(t["shape"]),
            value_range=(t["range"][0], t["range"][1]) if t.get("range") else None,
        )
        for t in job["inputs"]
    )
    source = SourceModel(
        path=Path(job["files"][0]["path"]), format="bundle", inputs=specs, outputs=()
    )
    feeds = sample_inputs(source, samples=max(1, min(runs, 8)), seed=int(job["seed"]))

    baseline = _status_mib("VmRSS")
    before = set(sys.modules)
    start = time.perf_counter()
    runner = conv.load(artifact)
    first_load = time.perf_counter() - start
    versions = _versions_of(set(sys.modules) - before)
    runner(feeds[0])
    del runner
    gc.collect()

    start = time.perf_counter()
    runner = conv.load(artifact)
    load = time.perf_counter() - start
    start = time.perf_counter()
    runner(feeds[0])
    first_run = time.perf_counter() - start
    for i in range(warmup):
        runner(feeds[i % len(feeds)])
    samples = []
    for i in range(runs):
        feed = feeds[i % len(feeds)]
        start = time.perf_counter()
        runner(feed)
        samples.append((time.perf_counter() - start) * 1000)
    return {
        "ok": True,
        "firstLoadMs": first_load * 1000,
        "loadMs": load * 1000,
        "firstRunMs": first_run * 1000,
        "samplesMs": samples,
        "peakMiB": _peak_mib(),
        "baselineMiB": baseline,
        "runtimeVersions": versions,
    }


def main() -> int:
    # Keep the real stdout for the result; point fd 1 (and so every native
    # printf and Python print of the runtimes) at stderr.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        job = json.load(sys.stdin)
        result = measure(job)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which records the failure
        traceback.print_exc()
        message = getattr(e, "message", None) or str(e) or type(e).__name__
        result = {"ok": False, "error": f"{type(e).__name__}: {message}"}
    with os.fdopen(result_fd, "w") as out:
        json.dump(result, out)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
