"""Find converters through entry points; parse targets.

Converters register under the entry-point group ``aoe_pack.converters``; the
entry point names a class (or factory) taking no arguments. The built-ins are
registered the same way in aoe-pack's own pyproject.toml.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from aoe_pack.config.model import RUNTIME_ALIASES
from aoe_pack.convert.api import Converter, Target, require_variant
from aoe_pack.errors import ConverterNotFoundError, UsageError

GROUP = "aoe_pack.converters"


@functools.cache
def converters() -> Mapping[str, Converter]:
    """Every registered converter, by runtime name."""
    found: dict[str, Converter] = {}
    for ep in entry_points(group=GROUP):
        try:
            factory = ep.load()
            conv = factory()
        except Exception as e:  # a plugin failing to load is reported by its name
            raise ConverterNotFoundError(
                f"converter plugin {ep.name!r} ({ep.value}) failed to load: {e}"
            ) from e
        if not isinstance(conv, Converter):
            raise ConverterNotFoundError(
                f"converter plugin {ep.name!r} ({ep.value}) does not implement the Converter "
                "protocol (runtime, variants, default_tolerance, convert, load)"
            )
        if conv.runtime in found:
            raise ConverterNotFoundError(f"two converters register runtime {conv.runtime!r}")
        found[conv.runtime] = conv
    return found


def converter_for(target: Target) -> Converter:
    """The converter for ``target``; ConverterNotFoundError names what exists."""
    available = converters()
    conv = available.get(target.runtime)
    if conv is None:
        raise ConverterNotFoundError(
            f"no converter for runtime {target.runtime!r}; "
            f"available: {', '.join(sorted(available)) or 'none'}",
            hint="install aoe-pack[convert], or the plugin package that provides it",
        )
    require_variant(conv.runtime, conv.variants, target.variant)
    return conv


def parse_target(spec: str | Mapping[str, Any]) -> Target:
    """A target from ``--target runtime[:variant]`` or a config ``targets`` item."""
    if isinstance(spec, str):
        runtime, _, variant = spec.partition(":")
        raw: Mapping[str, Any] = {"runtime": runtime, "variant": variant or None}
    else:
        raw = spec
    runtime = str(raw.get("runtime") or "")
    if not runtime:
        raise UsageError(f"target {spec!r} names no runtime", hint="write e.g. tflite:fp16")
    runtime = RUNTIME_ALIASES.get(runtime, runtime)
    conv = converters().get(runtime)
    variant = raw.get("variant") or (conv.variants[0] if conv else "default")
    tolerance = raw.get("tolerance")
    options = {k: v for k, v in raw.items() if k not in ("runtime", "variant", "tolerance")}
    return Target(
        runtime=runtime,
        variant=str(variant),
        options=options,
        tolerance=float(tolerance) if tolerance is not None else None,
    )
