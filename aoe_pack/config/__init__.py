"""Read, validate and migrate model configs.

:func:`load_config` gives a validated :class:`ModelConfig` or raises;
:func:`validate_config` reports every problem with its line and a hint;
:func:`migrate_config` rewrites a legacy AoE config in canonical form. The
JSON Schema is ``schemas/model-config.schema.json``.

Each name is imported from its module when first used: a repository
document's schema check (:func:`ecma_validator`) loads neither the config
validation nor the migration.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aoe_pack.config._normalise import complete_io
    from aoe_pack.config._schema import ecma_validator
    from aoe_pack.config.model import ModelConfig, ModelFile, TensorSpec
    from aoe_pack.config.validate import (
        LegacyNotice,
        Rewrite,
        ValidationReport,
        Violation,
        load_config,
        migrate_config,
        validate_config,
    )

__all__ = [
    "LegacyNotice",
    "ModelConfig",
    "ModelFile",
    "Rewrite",
    "TensorSpec",
    "ValidationReport",
    "Violation",
    "complete_io",
    "ecma_validator",
    "load_config",
    "migrate_config",
    "validate_config",
]

# Each name's module, imported on first use (PEP 562), so that a command
# pays only for the modules it uses.
_LAZY = {
    "LegacyNotice": "aoe_pack.config.validate",
    "ModelConfig": "aoe_pack.config.model",
    "ModelFile": "aoe_pack.config.model",
    "Rewrite": "aoe_pack.config.validate",
    "TensorSpec": "aoe_pack.config.model",
    "ValidationReport": "aoe_pack.config.validate",
    "Violation": "aoe_pack.config.validate",
    "complete_io": "aoe_pack.config._normalise",
    "ecma_validator": "aoe_pack.config._schema",
    "load_config": "aoe_pack.config.validate",
    "migrate_config": "aoe_pack.config.validate",
    "validate_config": "aoe_pack.config.validate",
}

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        # Not cached here: a test that patches the module is then seen, and undone.
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
