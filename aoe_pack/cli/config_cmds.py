"""``validate`` and ``migrate``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import json_option
from aoe_pack.cli._output import Output
from aoe_pack.errors import EXIT_FAILURE, MissingExtraError

if TYPE_CHECKING:
    from aoe_pack.config.model import ModelConfig


def _report_text(output: Output, report: object, path: Path) -> None:
    from aoe_pack.config import ValidationReport

    assert isinstance(report, ValidationReport)
    for n in report.notices:
        where = f"{path}:{n.line}" if n.line else str(path)
        output.line(f"{where}: legacy: {n.message}", fg="yellow")
    for v in report.violations:
        where = f"{path}:{v.line}:{v.column}" if v.line else str(path)
        output.line(f"{where}: {v.pointer or '/'}: {v.message}", fg="red")
        if v.hint:
            output.line(f"    hint: {v.hint}")
    if report.ok:
        output.line(f"{path}: valid", fg="green", bold=True)
    else:
        output.line(f"{path}: {len(report.violations)} problem(s)", fg="red", bold=True)


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--fix",
    is_flag=True,
    help="Rewrite CONFIG in canonical form (legacy AoE spellings mapped), atomically.",
)
@click.option(
    "--no-model",
    is_flag=True,
    help="Check the config only, not the model file it names.",
)
@json_option
def validate(config: Path, fix: bool, no_model: bool, json_mode: bool) -> None:
    """Check a model config against the schema, and its model against the config.

    Each config problem comes with its JSON path, line and column, and a hint.
    Legacy AoE configs (Android model.config, iOS, unquoted versions) are read
    with a warning per legacy spelling; --fix writes them back in canonical form.

    Then the model (Keras, SavedModel, TFLite or ONNX) is loaded and its inputs
    and outputs compared with the declared ones: a corrupt file, an unsupported
    opset or a disagreeing signature fails here, before any build. This needs
    aoe-pack[convert]; without it, the model is reported as not checked.
    """
    output = Output(json_mode)
    model: dict[str, object] | None = None
    with handle_errors(json_mode):
        from aoe_pack.config import migrate_config, validate_config

        report = migrate_config(config) if fix else validate_config(config)
        if report.config is not None and not no_model:
            model = _check_model(report.config, output)

    def text() -> None:
        _report_text(output, report, config)
        if model and model.get("checked"):
            details = model.get("details") or {}
            assert isinstance(details, dict)
            facts = "".join(f", {k} {v}" for k, v in details.items() if k != "producer")
            output.line(
                f"{config}: model {model['path']} ({model['format']}{facts}) "
                "matches its declaration"
            )

    output.result({**report.to_dict(), "model": model}, text)
    if not report.ok:
        sys.exit(EXIT_FAILURE)


def _check_model(cfg: ModelConfig, output: Output) -> dict[str, object]:
    from aoe_pack.convert.pipeline import validate_source

    try:
        source = validate_source(cfg)
    except MissingExtraError as e:
        output.warn(f"the model was not checked: {e.message}")
        return {"checked": False, "path": cfg.model_name, "reason": e.message}
    if source is None:
        return {"checked": False, "path": cfg.model_name, "reason": "format packed as it is"}
    details = {k: v for k, v in source.details.items() if isinstance(v, str | int | bool)}
    return {"checked": True, "path": cfg.model_name, "format": source.format, "details": details}


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the canonical config here instead of in place.",
)
@json_option
def migrate(config: Path, out: Path | None, json_mode: bool) -> None:
    """Convert a legacy AoE config to the canonical aoe-pack form."""
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.config import migrate_config

        report = migrate_config(config, out)

    def text() -> None:
        _report_text(output, report, config)
        output.line(f"wrote {out or config}")

    output.result(report.to_dict(), text)
