"""Run converted artifacts, and ONNX or TFLite sources, in child processes.

Parity needs each artifact's outputs on the parity inputs. A runtime may die
with a signal, abort, hang or print to stdout while it runs a model it does
not really support, so the run happens in a child process
(:mod:`aoe_pack._child`, program :mod:`aoe_pack.convert._run_child`): the
inputs go to an ``.npz`` written once per build, the outputs come back in
another, and a death becomes a :class:`~aoe_pack.errors.RuntimeCrashError`
for that target alone, naming the signal and quoting the runtime's log.
The converter's own ``load`` runs there, exactly as ``bench`` runs it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoe_pack._child import ChildOutcome, run_module
from aoe_pack.convert.api import Array, Artifact, SourceModel
from aoe_pack.errors import RuntimeCrashError, error_for_code

DEFAULT_TIMEOUT = 900.0
"""Seconds one artifact may take to load and run every parity sample."""

_PROGRAM = "aoe_pack.convert._run_child"
_counter = itertools.count()


@dataclass(frozen=True, kw_only=True)
class Feeds:
    """The parity inputs, written once to an ``.npz`` that every child reads."""

    path: Path
    names: tuple[str, ...]
    count: int

    @classmethod
    def write(cls, inputs: Sequence[Mapping[str, Array]], folder: Path) -> Feeds:
        """Save ``inputs`` (per sample: input name -> array) under ``folder``."""
        import numpy as np

        names = tuple(inputs[0]) if inputs else ()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "parity-inputs.npz"
        arrays = {
            f"s{i}_i{j}": np.asarray(feed[name])
            for i, feed in enumerate(inputs)
            for j, name in enumerate(names)
        }
        np.savez(path, **arrays)  # type: ignore[arg-type]
        return cls(path=path, names=names, count=len(inputs))

    def job(self, out: Path) -> dict[str, Any]:
        return {
            "inputs": str(self.path),
            "names": list(self.names),
            "count": self.count,
            "outputs": str(out),
        }


def run_artifact(
    artifact: Artifact, feeds: Feeds, *, label: str, timeout: float = DEFAULT_TIMEOUT
) -> list[list[Array]]:
    """The artifact's outputs on every parity sample, computed in a child process."""
    target = artifact.target
    job = {
        "kind": "artifact",
        "runtime": target.runtime,
        "variant": target.variant,
        "options": dict(target.options),
        "files": [
            {"local": str(f.local), "bundlePath": f.bundle_path, "role": f.role}
            for f in artifact.files
        ],
    }
    where = artifact.files[0].local.parent if artifact.files else feeds.path.parent
    return _run(job, feeds, where, label=label, runtime=target.runtime, timeout=timeout)


def run_source(
    source: SourceModel, feeds: Feeds, *, timeout: float = DEFAULT_TIMEOUT
) -> list[list[Array]]:
    """An ONNX or TFLite source's outputs on every sample (onnxruntime unoptimised, LiteRT)."""
    job = {"kind": "source", "format": source.format, "path": str(source.path)}
    runtime = "onnxruntime" if source.format == "onnx" else "LiteRT"
    return _run(
        job, feeds, feeds.path.parent, label="the source model", runtime=runtime, timeout=timeout
    )


def _run(
    job: dict[str, Any],
    feeds: Feeds,
    folder: Path,
    *,
    label: str,
    runtime: str,
    timeout: float,
) -> list[list[Array]]:
    import numpy as np

    out = folder / f".parity-outputs-{next(_counter)}.npz"
    outcome = run_module(_PROGRAM, {**job, **feeds.job(out)}, timeout=timeout, log_dir=folder)
    try:
        result = _checked(outcome, label=label, runtime=runtime, timeout=timeout)
        counts: list[int] = [int(n) for n in result["outputs"]]
        with np.load(out, allow_pickle=False) as data:
            return [[data[f"s{i}_o{k}"] for k in range(n)] for i, n in enumerate(counts)]
    finally:
        out.unlink(missing_ok=True)


def _checked(outcome: ChildOutcome, *, label: str, runtime: str, timeout: float) -> dict[str, Any]:
    log = f"\n{runtime}'s last output:\n{outcome.log_tail}" if outcome.log_tail else ""
    if outcome.timed_out:
        raise RuntimeCrashError(
            f"{label}: {runtime} did not finish the parity samples within {timeout:.0f} s "
            f"and was stopped{log}",
            hint="the runtime may loop on this model; drop the target if it cannot run it",
        )
    result = outcome.result
    if result is None:
        raise RuntimeCrashError(
            f"{label}: the {runtime} runtime {outcome.death} while running the model on the "
            f"parity inputs{log}",
            hint="the runtime cannot run this model; drop the target, or report the crash "
            "to the runtime with the artifact",
        )
    if not result.get("ok"):
        code = result.get("code")
        message = str(result.get("error") or "failed")
        hint = result.get("hint")
        if code is None:  # not one of ours: the runtime's own exception
            message = f"{runtime} failed to run it: {message}"
        raise error_for_code(
            code if isinstance(code, str) else None,
            f"{label}: {message}",
            hint=hint if isinstance(hint, str) else None,
        )
    return result
