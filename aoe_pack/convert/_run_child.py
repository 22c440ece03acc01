"""The child program of :mod:`aoe_pack.convert.isolate`: run one model on the parity inputs.

Started as ``python -c <bootstrap> aoe_pack.convert._run_child``; the job is
JSON on stdin (see ``isolate``). It loads an artifact through its converter's
``load``, or an ONNX/TFLite source through the reference runners, runs every
sample and saves each output to the job's ``outputs`` ``.npz`` as
``s<sample>_o<output>``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from aoe_pack._child import child_main
from aoe_pack.convert.api import Artifact, ArtifactFile, Runner, Target


def _runner(job: dict[str, Any]) -> Runner:
    if job["kind"] == "source":
        path = Path(job["path"])
        if job["format"] == "onnx":
            from aoe_pack.convert.runners import OnnxRuntimeRunner

            return OnnxRuntimeRunner(path, reference=True)
        from aoe_pack.convert.runners import LiteRTRunner

        return LiteRTRunner(path)
    from aoe_pack.convert.registry import converters

    target = Target(runtime=job["runtime"], variant=job["variant"], options=job["options"])
    artifact = Artifact(
        target=target,
        files=tuple(
            ArtifactFile(local=Path(f["local"]), bundle_path=f["bundlePath"], role=f["role"])
            for f in job["files"]
        ),
    )
    return converters()[target.runtime].load(artifact)


def handle(job: dict[str, Any]) -> dict[str, Any]:
    """Run the job's model on every sample; save the outputs; say how many per sample."""
    import numpy as np

    names: list[str] = job["names"]
    with np.load(job["inputs"], allow_pickle=False) as data:
        feeds = [
            {name: data[f"s{i}_i{j}"] for j, name in enumerate(names)}
            for i in range(int(job["count"]))
        ]
    runner = _runner(job)
    arrays: dict[str, Any] = {}
    counts = []
    for i, feed in enumerate(feeds):
        outputs = list(runner(feed))
        counts.append(len(outputs))
        for k, value in enumerate(outputs):
            arrays[f"s{i}_o{k}"] = np.asarray(value)
    np.savez(job["outputs"], **arrays)
    return {"outputs": counts}


if __name__ == "__main__":
    sys.exit(child_main(handle))
