"""The canonical form of a config and the :class:`ModelConfig` built from it.

The canonical form is what ``migrate`` writes and what bundles embed: canonical
key names, defaults written out, keys in one stable order. Writing the
defaults out means a reader of the bundle never has to know them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aoe_pack.config.model import RUNTIME_ALIASES, ModelConfig, ModelFile, TensorSpec

KEY_ORDER = (
    "$schema",
    "version",
    "tag",
    "runtime",
    "source",
    "description",
    "modelDir",
    "modelName",
    "minAppVersion",
    "updateURL",
    "encrypt",
    "inputs",
    "outputs",
    "files",
    "targets",
    "sampleInputs",
)
DEFAULTS: Mapping[str, Any] = {"source": "installed", "encrypt": True}
_TENSOR_ORDER = ("name", "dtype", "shape", "range", "kind")
_FILE_ORDER = ("path", "role")
_TARGET_ORDER = ("runtime", "variant")


def _ordered(obj: Any, order: Sequence[str]) -> Any:
    """``obj`` with the keys of ``order`` first; other keys keep their order."""
    if not isinstance(obj, Mapping):
        return obj
    known = {k: obj[k] for k in order if k in obj}
    return known | {k: v for k, v in obj.items() if k not in known}


def _ordered_list(items: Any, order: Sequence[str]) -> Any:
    return [_ordered(i, order) for i in items] if isinstance(items, list) else items


def canonical_form(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical dict of a (mapped) config document, valid or not."""
    out = _ordered({**DEFAULTS, **doc}, KEY_ORDER)
    for group in ("inputs", "outputs"):
        if group in out:
            out[group] = _ordered_list(out[group], _TENSOR_ORDER)
    if "files" in out:
        out["files"] = _ordered_list(out["files"], _FILE_ORDER)
    if "targets" in out:
        out["targets"] = _ordered_list(out["targets"], _TARGET_ORDER)
    result: dict[str, Any] = out
    return result


def _tensors(items: Sequence[Mapping[str, Any]]) -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(
            name=t["name"],
            dtype=t["dtype"],
            shape=tuple(t["shape"]),
            value_range=(t["range"][0], t["range"][1]) if "range" in t else None,
            kind=t.get("kind"),
        )
        for t in items
    )


def build_config(source_path: Path, canonical: Mapping[str, Any]) -> ModelConfig:
    """The :class:`ModelConfig` of a canonical dict that passed validation."""
    files = (
        ModelFile(path=canonical["modelName"], role="model"),
        *(ModelFile(path=f["path"], role=f["role"]) for f in canonical.get("files", [])),
    )
    return ModelConfig(
        source_path=source_path,
        version=canonical["version"],
        tag=canonical["tag"],
        runtime=RUNTIME_ALIASES.get(canonical["runtime"], canonical["runtime"]),
        source=canonical["source"],
        model_dir=canonical["modelDir"],
        model_name=canonical["modelName"],
        update_url=canonical.get("updateURL"),
        min_app_version=canonical.get("minAppVersion"),
        inputs=_tensors(canonical["inputs"]) if "inputs" in canonical else None,
        outputs=_tensors(canonical["outputs"]) if "outputs" in canonical else None,
        files=files,
        targets=tuple(dict(t) for t in canonical.get("targets", [])),
        encrypt=canonical["encrypt"],
        canonical=canonical,
    )


def complete_io(
    config: ModelConfig, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]
) -> ModelConfig:
    """``config`` with the inputs/outputs it left undeclared filled in (read from the model).

    Declared ones stay as written. The canonical form changes accordingly: it is
    what ``validate --fix`` and ``migrate`` write and what a bundle embeds.
    """
    canonical = dict(config.canonical)
    changes: dict[str, Any] = {}
    if config.inputs is None:
        canonical["inputs"] = [t.to_dict() for t in inputs]
        changes["inputs"] = tuple(inputs)
    if config.outputs is None:
        canonical["outputs"] = [t.to_dict() for t in outputs]
        changes["outputs"] = tuple(outputs)
    if not changes:
        return config
    return dataclasses.replace(config, canonical=canonical_form(canonical), **changes)
