"""``validate`` and ``migrate``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aoe_pack.cli import _streams
from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import INPUT_FILE, json_option, verbosity_options
from aoe_pack.cli._output import Output
from aoe_pack.errors import EXIT_FAILURE, AoePackError, MissingExtraError

if TYPE_CHECKING:
    from aoe_pack.config.model import ModelConfig
    from aoe_pack.convert.api import SourceModel


def _report_text(output: Output, report: object, path: Path) -> None:
    from aoe_pack.config import ValidationReport

    assert isinstance(report, ValidationReport)
    if report.rewrite is None:  # a rewrite lists them among its changes
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
    rewrite = report.rewrite
    if rewrite is None:
        return
    if not rewrite.written:
        output.line(f"{rewrite.path}: already canonical, left as it was")
        return
    verb = "rewrote" if rewrite.path == path else "wrote"
    output.line(f"{verb} {rewrite.path}:")
    for change in rewrite.changes:
        output.line(f"  {change}")


@click.command()
@click.argument("config", type=INPUT_FILE)
@click.option(
    "--fix",
    is_flag=True,
    help="Rewrite CONFIG in canonical form (legacy AoE spellings mapped), atomically, and "
    'list each change (--json: "rewritten").',
)
@click.option(
    "--no-model",
    is_flag=True,
    help="Check the config only, not the model file it names.",
)
@json_option
@verbosity_options
def validate(config: Path, fix: bool, no_model: bool, json_mode: bool) -> None:
    """Check a model config against the schema, and its model against the config.

    Each config problem comes with its JSON path, line and column, and a hint.
    Legacy AoE configs (Android model.config, iOS, the seed article's form,
    unquoted versions) are read with a warning per legacy spelling; --fix
    writes them back in canonical form.

    Then the model (Keras, SavedModel, TFLite or ONNX) is loaded and its inputs
    and outputs compared with the declared ones: a corrupt file, an unsupported
    opset or a disagreeing signature fails here, before any build. Inputs and
    outputs the config does not declare are read from the model and shown;
    --fix writes them into the config. This needs aoe-pack[convert]; without
    it, the model is reported as not checked.

    \b
    Example:
      aoe-pack validate sample_models/mnist/config.json
      aoe-pack validate old-aoe/model.config --fix --no-model
    """
    output = Output(json_mode)
    check = _ModelCheck(output, skip=no_model)
    with handle_errors(json_mode):
        from aoe_pack.config import migrate_config, validate_config

        if fix:
            report = migrate_config(config, complete=check.complete)
        else:
            report = validate_config(config)
            if report.config is not None:
                check.complete(report.config)
        check.raise_failure()

    def text() -> None:
        _report_text(output, report, config)
        check.show(config, written=fix)

    output.result({**report.to_dict(), "model": check.result}, text)
    if not report.ok:
        sys.exit(EXIT_FAILURE)


class _ModelCheck:
    """The model check of ``validate`` and ``migrate``: a completer for migrate_config.

    It loads the model, compares it with the declaration and fills in the
    inputs and outputs the config leaves out. A failure is kept until the
    config was written (so --fix still fixes the config) and raised then.
    """

    def __init__(self, output: Output, *, skip: bool) -> None:
        self.output = output
        self.skip = skip
        self.result: dict[str, object] | None = None
        self.failure: AoePackError | None = None

    def complete(self, cfg: ModelConfig) -> ModelConfig:
        from aoe_pack.config import complete_io
        from aoe_pack.convert.pipeline import validate_source

        if self.skip:
            return cfg
        try:
            with _streams.frameworks():
                source = validate_source(cfg)
        except MissingExtraError as e:
            self.output.warn(f"the model was not checked: {e.message} ({e.hint})")
            self.result = {"checked": False, "path": cfg.model_name, "reason": e.message}
            return cfg
        except AoePackError as e:
            self.failure = e
            return cfg
        if source is None:
            self.result = {
                "checked": False,
                "path": cfg.model_name,
                "reason": "format packed as it is",
            }
            return cfg
        details = {k: v for k, v in source.details.items() if isinstance(v, str | int | bool)}
        read = [k for k, given in (("inputs", cfg.inputs), ("outputs", cfg.outputs)) if not given]
        self.result = {
            "checked": True,
            "path": cfg.model_name,
            "format": source.format,
            "details": details,
            "inputs": [t.to_dict() for t in source.inputs],
            "outputs": [t.to_dict() for t in source.outputs],
            "readFromModel": read,
        }
        self._precheck(cfg, source)
        return complete_io(cfg, source.inputs, source.outputs)

    def _precheck(self, cfg: ModelConfig, source: SourceModel) -> None:
        """Targets a converter can already tell it will refuse (before any conversion)."""
        from aoe_pack.convert.pipeline import precheck, targets_of
        from aoe_pack.errors import TargetsFailedError

        if not cfg.targets:
            return
        refused = precheck(source, targets_of(cfg))
        if not refused:
            return
        outcomes = [o.to_dict(timings=False) for o in refused]
        first = refused[0]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        self.failure = TargetsFailedError(
            f"{first.target.name} would be refused: {first.reason}{more}",
            outcomes=outcomes,
            hint="drop the target from the config, or build with --skip-failed-targets to ship "
            "the others",
        )

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def show(self, config: Path, *, written: bool) -> None:
        model = self.result
        if not model or not model.get("checked"):
            return
        details = model.get("details") or {}
        assert isinstance(details, dict)
        facts = "".join(
            f", {k} {v}" for k, v in details.items() if k not in ("producer", "io_read_from_model")
        )
        read = model.get("readFromModel") or []
        assert isinstance(read, list)
        verdict = "matches its declaration" if len(read) < 2 else "was read"
        self.output.line(f"{config}: model {model['path']} ({model['format']}{facts}) {verdict}")
        for kind in ("inputs", "outputs"):
            if kind not in read:
                continue
            how = "written into the config" if written else "--fix writes them into the config"
            self.output.line(f"  {kind} read from the model (not declared; {how}):")
            tensors = model.get(kind) or []
            assert isinstance(tensors, list)
            for t in tensors:
                shape = ", ".join(str(d) for d in t["shape"])
                self.output.line(f"    {t['name']}  {t['dtype']}  [{shape}]")


@click.command()
@click.argument("config", type=INPUT_FILE)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the canonical config here instead of in place.",
)
@click.option(
    "--no-model",
    is_flag=True,
    help="Do not read the model: undeclared inputs and outputs stay undeclared.",
)
@json_option
@verbosity_options
def migrate(config: Path, out: Path | None, no_model: bool, json_mode: bool) -> None:
    """Convert a legacy AoE config to the canonical aoe-pack form.

    Inputs and outputs the config does not declare are read from the model
    and written out (needs aoe-pack[convert]), as validate --fix does.

    \b
    Example:
      aoe-pack migrate old-aoe/model.config --out old-aoe/config.json
    """
    output = Output(json_mode)
    check = _ModelCheck(output, skip=no_model)
    with handle_errors(json_mode):
        from aoe_pack.config import migrate_config

        report = migrate_config(config, out, complete=check.complete)
        check.raise_failure()

    def text() -> None:
        _report_text(output, report, config)
        check.show(config, written=True)

    output.result({**report.to_dict(), "model": check.result}, text)
