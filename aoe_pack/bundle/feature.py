"""A feature made of several models, shipped and updated as one bundle.

AoE located a model by its config's ``tag`` and its ``modelDir``: a bank-card
reader is two models (find the card and its digits, then read the digits)
under one tag. Released separately, a device could run detector 2 with
recogniser 1. Built together, the configs must share their ``tag`` and
``version``, and the bundle holds every model under its own folder:

* each payload path is ``<model>/<path>``, where ``<model>`` is the name of
  the folder holding that model's files (``detector/tflite/fp16/det.tflite``),
  so a device unpacks the feature as the app expects it;
* the manifest's ``model`` names the feature: its ``tag`` and ``version``,
  ``name`` = the tag, ``runtime`` = the first model's, ``updateURL`` = the
  first one a config gives (every config that gives one must name the same
  repository: a feature is released under one tag, in one repository);
* its ``config`` is ``{"tag", "version", "models": {<model>: <canonical
  config>}}`` and its ``provenance`` holds ``"models": {<model>: <that
  model's source, conversions and refusals>}``.

Nothing in the signed format changes: a v1 reader verifies and unpacks a
feature bundle like any other, and the repository releases it under its tag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aoe_pack.bundle.build import PayloadSource
from aoe_pack.bundle.manifest import ModelIdentity
from aoe_pack.config.model import ModelConfig
from aoe_pack.errors import ConfigError
from aoe_pack.urls import same_repository

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, kw_only=True)
class FeatureModel:
    """One model of a feature: its config, its files (unprefixed) and what its build found."""

    config: ModelConfig
    payload: tuple[PayloadSource, ...]
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return model_key(self.config)


def model_key(config: ModelConfig) -> str:
    """The folder a model's files sit in, which names it inside the feature."""
    key = config.model_root.name
    if not _KEY.fullmatch(key):
        raise ConfigError(
            f"{config.source_path}: the model folder {key!r} cannot name a model in a bundle",
            hint="put each model's files in a folder named with letters, digits, '.', '_' or '-'",
        )
    return key


def check_feature(configs: Sequence[ModelConfig]) -> tuple[str, str]:
    """The feature's tag and version; ConfigError unless every config agrees and names differ."""
    first = configs[0]
    for cfg in configs[1:]:
        if cfg.tag != first.tag:
            raise ConfigError(
                f"{cfg.source_path} has tag {cfg.tag!r}, {first.source_path} {first.tag!r}: "
                "the models of one bundle make one feature, under one tag",
                hint="build models of different tags into bundles of their own",
            )
        if cfg.version != first.version:
            raise ConfigError(
                f"{cfg.source_path} is version {cfg.version}, {first.source_path} "
                f"{first.version}: a feature's models are released together, at one version",
                hint="give every config of the feature the same version",
            )
    urls = [(c, c.update_url) for c in configs if c.update_url is not None]
    for cfg, url in urls[1:]:
        if not same_repository(url, urls[0][1]):
            raise ConfigError(
                f"{cfg.source_path} has updateURL {url!r}, {urls[0][0].source_path} "
                f"{urls[0][1]!r}: a feature is released in one repository",
                hint="give every config of the feature the same updateURL (or only one of them)",
            )
    keys = [model_key(c) for c in configs]
    doubles = sorted({k for k in keys if keys.count(k) > 1})
    if doubles:
        raise ConfigError(
            f"two models sit in folders named {doubles[0]!r}; each model of a feature needs "
            "a folder of its own name",
            hint="move each model's config and files into its own folder",
        )
    return first.tag, first.version


def feature_payload(models: Sequence[FeatureModel]) -> list[PayloadSource]:
    """Every model's files under ``<model>/``."""
    return [
        PayloadSource(
            local=p.local,
            path=f"{m.key}/{p.path}",
            role=p.role,
            runtime=p.runtime,
            variant=p.variant,
        )
        for m in models
        for p in m.payload
    ]


def feature_identity(models: Sequence[FeatureModel]) -> ModelIdentity:
    first = models[0].config
    urls = [m.config.update_url for m in models if m.config.update_url is not None]
    return ModelIdentity(
        tag=first.tag,
        name=first.tag,
        version=first.version,
        runtime=first.runtime,
        update_url=urls[0] if urls else None,
    )


def feature_config(models: Sequence[FeatureModel]) -> dict[str, Any]:
    first = models[0].config
    return {
        "tag": first.tag,
        "version": first.version,
        "models": {m.key: dict(m.config.canonical) for m in models},
    }


def feature_provenance(models: Sequence[FeatureModel]) -> dict[str, Any]:
    return {"models": {m.key: dict(m.provenance) for m in models}}


def models_of(manifest_config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A bundle's models by name: ``{"": config}`` for a single-model bundle."""
    models = manifest_config.get("models")
    if isinstance(models, Mapping) and models:
        return {str(k): v for k, v in models.items() if isinstance(v, Mapping)}
    return {"": manifest_config}
