"""Validate, load and migrate model configs.

Validation reports every problem at once, each with a JSON pointer, the line
and column where the user wrote it and, where it helps, a hint. It reads
legacy AoE configs too (see :mod:`aoe_pack.config.legacy`): their spellings are
mapped to canonical ones, each with a :class:`LegacyNotice`.

A file that is not JSON is reported as a :class:`Violation` with the line and
column of the syntax error, like any other problem, so ``validate --json``
has one shape for every invalid config. Only a file that cannot be read at
all (missing, a folder, not UTF-8) raises :class:`ConfigParseError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from typing import Any

from aoe_pack._io import FileTooLargeError, read_capped
from aoe_pack._jcs import json_values_beyond
from aoe_pack.config import _source
from aoe_pack.config._checks import (
    address_findings,
    file_findings,
    relation_findings,
    release_findings,
)
from aoe_pack.config._normalise import build_config, canonical_form
from aoe_pack.config._report import LegacyNotice, Rewrite, ValidationReport, Violation
from aoe_pack.config._schema import Finding, schema_findings
from aoe_pack.config.legacy import map_legacy, repair_text
from aoe_pack.config.model import ModelConfig
from aoe_pack.errors import ConfigParseError, ConfigValidationError, OutputError

_LAST = 1 << 30  # sorts findings without a line after the others
_DUPLICATE_HINT = "remove one: JSON readers disagree on which one counts"

__all__ = [
    "LegacyNotice",
    "Rewrite",
    "ValidationReport",
    "Violation",
    "load_config",
    "migrate_config",
    "validate_config",
]


def validate_config(path: Path) -> ValidationReport:
    """Check the config at ``path`` and report every problem found.

    Raises :class:`ConfigParseError` only when the file cannot be read as
    UTF-8 text; every other problem is a :class:`Violation` in the report.
    """
    path = Path(path)
    original = _read(path)
    parsed = _parse(original)
    if isinstance(parsed, Violation):
        return ValidationReport(path, (parsed,), (), None, None)
    src, data, notices = parsed
    violations = [
        _at_key(src, Violation(p, None, None, "key appears more than once", _DUPLICATE_HINT))
        for p in _source.duplicate_keys(data)
    ]
    data = _source.plain(data)
    origins: Mapping[str, str] = {}
    if isinstance(data, dict):
        mapping = map_legacy(data, config_dir=path.parent)
        data, origins = mapping.data, mapping.origins
        notices += [_placed(src, n) for n in mapping.notices]
        violations += [_at_key(src, v) for v in mapping.conflicts]
    findings = schema_findings(data)
    if isinstance(data, dict):
        failed = {f.pointer for f in findings}
        findings += relation_findings(data, failed)
        findings += release_findings(data, failed)
        findings += address_findings(data, failed)
        findings += file_findings(data, path.parent, failed)
    violations += [_locate(src, origins, f) for f in findings]
    violations.sort(key=lambda v: (v.line or _LAST, v.column or 0, v.pointer, v.message))
    notices.sort(key=lambda n: n.line or _LAST)
    canonical = canonical_form(data) if isinstance(data, dict) else None
    config = None
    if canonical is not None and not violations:
        config = build_config(path.resolve(), canonical)
    return ValidationReport(path, tuple(violations), tuple(notices), canonical, config)


def load_config(path: Path) -> ModelConfig:
    """The validated :class:`ModelConfig` at ``path``.

    Raises :class:`ConfigValidationError` listing every violation, or
    :class:`ConfigParseError` when the file cannot be read.
    """
    report = validate_config(path)
    if report.config is None:
        raise _invalid(report)
    return report.config


def migrate_config(
    path: Path,
    out: Path | None = None,
    *,
    complete: Callable[[ModelConfig], ModelConfig] | None = None,
) -> ValidationReport:
    """Rewrite the config at ``path`` in canonical form, to ``out`` or in place.

    The file is written atomically (2-space indented JSON, stable key order,
    trailing newline) and only if the config is valid after migration;
    otherwise :class:`ConfigValidationError` is raised and nothing is written.
    Migrating a canonical config changes nothing. The returned report is the
    source's: its notices list every legacy spelling that was rewritten. When
    ``out`` is in another folder, ``modelDir`` is rewritten to still name the
    same folder; :class:`OutputError` is raised if that would need ``..``.
    ``complete`` may add what the config leaves out (the inputs and outputs
    read from the model) before it is written.
    """
    path = Path(path)
    report = validate_config(path)
    config = report.config
    if config is None or report.canonical is None:
        raise _invalid(report, "not migrated")
    changes = [n.message for n in report.notices]
    if complete is not None:
        completed = complete(config)
        changes += _changed(config.canonical, completed.canonical, "read from the model")
        config = completed
        report = dataclasses.replace(report, canonical=dict(config.canonical), config=config)
    target = Path(out) if out is not None else path
    canonical = dict(config.canonical)
    if target.resolve().parent != path.resolve().parent:
        canonical["modelDir"] = _rebased_model_dir(config, target)
        changes += _changed(config.canonical, canonical, f"relative to {target.parent}")
        config = build_config(target.resolve(), canonical)
        report = dataclasses.replace(report, canonical=canonical, config=config)
    text = json.dumps(canonical, indent=2, ensure_ascii=False) + "\n"
    written = _write_atomic(target, text)
    if written and not changes:
        changes.append("canonical layout: key order and 2-space indentation")
    return dataclasses.replace(report, rewrite=Rewrite(target, written, tuple(changes)))


def _changed(before: Mapping[str, Any], after: Mapping[str, Any], why: str) -> list[str]:
    """The top-level keys ``after`` adds to ``before`` or changes, in words."""
    return [
        f"{'added' if key not in before else 'changed'} {key} ({why})"
        for key in after
        if before.get(key) != after[key]
    ]


MAX_CONFIG_BYTES = 1 << 20
"""A model config is a few kilobytes; the cap keeps validate's memory and time small."""
MAX_CONFIG_VALUES = 50_000
"""JSON values (member names included) a config may hold: the source map of
every value costs far more than its bytes (200,000 tiny arrays took 2 GB)."""


def _read(path: Path) -> str:
    try:
        data = read_capped(path, MAX_CONFIG_BYTES)
        values = json_values_beyond(data, MAX_CONFIG_VALUES)
        if values is not None:
            raise ConfigParseError(
                f"{path}: holds {values} JSON values; a config holds at most {MAX_CONFIG_VALUES}",
                hint="is this a model config? configs name files, they do not hold data",
            )
        # utf-8-sig: editors on Windows prepend a BOM that JSON forbids.
        return data.decode("utf-8-sig")
    except FileTooLargeError as e:
        raise ConfigParseError(
            f"{path}: larger than {e.cap} bytes; a config is a few kilobytes",
            hint="is this a model config? configs name files, they do not hold data",
        ) from None
    except UnicodeDecodeError as e:
        raise ConfigParseError(
            f"{path}: not UTF-8 text ({e.reason} at byte {e.start})",
            hint="save the config as UTF-8 JSON",
        ) from e
    except OSError as e:
        raise ConfigParseError(f"cannot read config {path}: {e.strerror or e}") from e


def _parse(original: str) -> Violation | tuple[_source.Source, Any, list[LegacyNotice]]:
    try:
        data = _source.loads(original)
    except ValueError as error:
        # Only text that is not JSON gets repaired.
        repair = repair_text(original)
        if not repair.values:
            return _source.syntax_violation(original, error)
    else:
        return _source.Source(original, original), data, []
    src = _source.Source(original, repair.text, repair.inserted)
    try:
        data = _source.loads(repair.text)
    except json.JSONDecodeError as error:
        # Still broken after the repair: report what is left, where the file has it.
        at = src.original_position(error.pos)
        return _source.syntax_violation(original, json.JSONDecodeError(error.msg, original, at))
    except ValueError as error:
        return _source.syntax_violation(original, error)
    notices = []
    for position, bare in repair.values:
        ptr = src.pointer_at(data, position)
        quoted = json.dumps(bare)
        message = f"{bare} was not quoted, which is not JSON; it is now the string {quoted}"
        notices.append(LegacyNotice(ptr, src.locate(ptr)[0], bare, quoted, message))
    return src, data, notices


def _at_key(src: _source.Source, violation: Violation) -> Violation:
    line, column = src.locate(violation.pointer, key=True)
    return dataclasses.replace(violation, line=line, column=column)


def _placed(src: _source.Source, notice: LegacyNotice) -> LegacyNotice:
    return dataclasses.replace(notice, line=src.locate(notice.pointer, key=True)[0])


def _locate(src: _source.Source, origins: Mapping[str, str], finding: Finding) -> Violation:
    # Walk up to the nearest pointer a legacy mapping moved, and translate.
    where, ptr = finding.pointer, finding.pointer
    while True:
        if ptr in origins:
            where = origins[ptr] + finding.pointer[len(ptr) :]
            break
        if not ptr:
            break
        ptr = _source.parent_pointer(ptr)
    line, column = src.locate(where, key=finding.key)
    return Violation(finding.pointer, line, column, finding.message, finding.hint)


def _invalid(report: ValidationReport, outcome: str = "invalid") -> ConfigValidationError:
    first = report.violations[0]
    count = len(report.violations)
    problems = "1 problem" if count == 1 else f"{count} problems"
    return ConfigValidationError(
        f"{report.path}: config {outcome}, {problems}; first: {first}",
        violations=list(report.violations),
        hint=first.hint,
    )


def _rebased_model_dir(config: ModelConfig, target: Path) -> str:
    relative = PurePath(os.path.relpath(config.model_root, target.resolve().parent))
    if relative.parts[:1] == ("..",) or relative.is_absolute():
        raise OutputError(
            f"cannot write {target}: its modelDir would have to leave the folder with '..'",
            hint="write the migrated config next to the original, or in a folder that "
            "contains the model files",
        )
    return relative.as_posix()


def _write_atomic(target: Path, text: str) -> bool:
    """Write ``text`` to ``target`` unless it holds it already; whether it wrote."""
    data = text.encode("utf-8")
    with contextlib.suppress(OSError):
        if target.read_bytes() == data:
            return False  # already canonical: leave the file (and its mtime) alone
    try:
        # Keep the permissions of the file being replaced (mkstemp makes 0600).
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"cannot write {target}: {e.strerror or e}") from e
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(mode)
        tmp.replace(target)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {target}: {e.strerror or e}") from e
        raise
    return True
