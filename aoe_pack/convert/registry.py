"""Find converters through entry points; parse targets.

Converters register under the entry-point group ``aoe_pack.converters``; the
entry point names a class (or factory) taking no arguments. The built-ins are
registered the same way in aoe-pack's own pyproject.toml.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aoe_pack.config.model import RUNTIME_ALIASES
from aoe_pack.convert.api import Converter, Target, Tolerance, require_variant, tolerance_of
from aoe_pack.errors import ConfigError, ConverterNotFoundError, UsageError

GROUP = "aoe_pack.converters"


@functools.cache
def converters() -> Mapping[str, Converter]:
    """Every registered converter, by runtime name."""
    # Imported here: importlib.metadata costs every build's start-up, plug-ins only some.
    from importlib.metadata import entry_points

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
    options = {k: v for k, v in raw.items() if k not in ("runtime", "variant", *_TOLERANCE_KEYS)}
    target = Target(runtime=runtime, variant=str(variant), options=options)
    return replace(target, tolerance=_tolerance(raw, target, conv))


_TOLERANCE_KEYS = ("tolerance", "rtol", "atol", "minTop1")


def _tolerance(raw: Mapping[str, Any], target: Target, conv: Converter | None) -> Tolerance | None:
    """The config's tolerance keys over the variant's defaults; None when it sets none.

    ``"tolerance"`` alone is aoe-pack 0.1's plain max absolute error.
    """
    if not any(k in raw for k in _TOLERANCE_KEYS):
        return None
    if "tolerance" in raw:
        if "rtol" in raw or "atol" in raw:
            raise ConfigError(
                f'target {target.name}: "tolerance" cannot be combined with "rtol" or "atol"'
            )
        base = Tolerance.absolute(float(raw["tolerance"]))
    elif conv is not None:
        base = tolerance_of(conv, target)
    else:
        base = Tolerance(rtol=0.0, atol=0.0)
    return Tolerance(
        rtol=float(raw.get("rtol", base.rtol)),
        atol=float(raw.get("atol", base.atol)),
        min_top1=float(raw.get("minTop1", base.min_top1)),
    )
