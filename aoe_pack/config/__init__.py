"""Read, validate and migrate model configs.

:func:`load_config` gives a validated :class:`ModelConfig` or raises;
:func:`validate_config` reports every problem with its line and a hint;
:func:`migrate_config` rewrites a legacy AoE config in canonical form. The
JSON Schema is ``schemas/model-config.schema.json``.
"""

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
