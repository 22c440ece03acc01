"""Check a config against the JSON Schema and say, per violation, what to do.

jsonschema is imported only when a config is validated, so the device-side
commands stay light.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aoe_pack.config._source import json_value, pointer
from aoe_pack.urls import EXAMPLE, url_problem

SCHEMA_RESOURCE = "model-config.schema.json"


@dataclass(frozen=True)
class Finding:
    """A violation in the canonical document, before it is placed in the file.

    ``key`` places it at the key rather than the value (for unknown keys).
    """

    pointer: str
    message: str
    hint: str | None = None
    key: bool = False


@functools.cache
def load_schema() -> Mapping[str, Any]:
    """The model-config JSON Schema shipped inside the package."""
    resource = importlib.resources.files("aoe_pack") / "schemas" / SCHEMA_RESOURCE
    schema: Mapping[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return schema


@functools.cache
def _validator() -> Any:
    return ecma_validator(load_schema())


def ecma_validator(schema: Mapping[str, Any]) -> Any:
    """A Draft 2020-12 validator whose ``pattern`` follows ECMA-262, as the spec says.

    jsonschema ships no type information (that is the separate types-jsonschema
    package), so its objects are typed Any here.
    """
    from jsonschema import (
        Draft202012Validator,
        ValidationError,
        validators,
    )

    def ecma_pattern(
        validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[Any]:
        # Schema patterns are ECMA-262, where "$" is the end of the input;
        # Python's "$" also matches before a final newline ("1.0.0\n"). Java and
        # Swift implementers match the whole string: so must we.
        if validator.is_type(instance, "string"):
            anchored = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
            if not re.search(anchored, instance):
                yield ValidationError(f"{instance!r} does not match {pattern!r}")

    cls = validators.extend(Draft202012Validator, {"pattern": ecma_pattern})
    return cls(schema)


def schema_findings(document: Any) -> list[Finding]:
    """Every schema violation in ``document``, each with a hint where one helps."""
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for error in _validator().iter_errors(document):
        for finding in _translate(error):
            if (finding.pointer, finding.message) not in seen:
                seen.add((finding.pointer, finding.message))
                findings.append(finding)
    return findings


def close_match(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` was most likely meant to be, if any is close."""
    options = list(choices)
    for option in options:
        if option.lower() == word.lower():
            return option
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _field(path: list[str | int]) -> str:
    """A readable name for the value at ``path``: "version", "shape[1]"."""
    if not path:
        return "the config"
    *head, last = path
    if isinstance(last, int):
        return f"{_field(head)}[{last}]" if head else f"item {last}"
    return last


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "true or false"}
_WANTED_TYPES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
}
_SEMVER_HINT = 'use semantic versioning MAJOR.MINOR.PATCH, e.g. "1.0.0" or "2.1.0-beta.1"'
_PATH_HINT = "a relative path with '/' between folders, without '..', a leading '/' or a drive"
_PATTERNS: Mapping[str, tuple[str, str | None]] = {
    "version": ("is not a semantic version", _SEMVER_HINT),
    "minAppVersion": ("is not a semantic version", _SEMVER_HINT),
    "tag": (
        "is not a valid tag",
        "start with a letter or digit, then use letters, digits, '.', '_' or '-' "
        "(at most 128 characters)",
    ),
    "modelDir": ("is not a safe relative folder", _PATH_HINT + " (relative to the config)"),
    "path": (
        "is not a plain relative path",
        "a path relative to modelDir with single '/' between folders and no '.', '..', "
        "leading '/' or drive",
    ),
    "modelName": (
        "is not a file or folder name",
        'give only the name inside modelDir, e.g. "mnist.tflite", without "/"',
    ),
}
URL_HINT = (
    f'the https:// address where devices read the repository, e.g. "{EXAMPLE}" '
    "(http:// only to localhost, 127.0.0.1 or [::1] while testing)"
)
_REQUIRED_HINTS = {
    "version": 'add "version": "1.0.0" (semantic versioning)',
    "tag": 'add a stable name for the model, e.g. "tag": "mnist"',
    "runtime": 'add "runtime": one of tflite, onnx, ort, mnn, ncnn, pytorch, tengine',
    "modelDir": 'add the folder of the model files relative to this config, e.g. "modelDir": "."',
    "modelName": 'add the model file name, e.g. "modelName": "mnist.tflite"',
    "shape": 'add the dimensions, e.g. "shape": [1, 28, 28, 1] (-1 for dynamic)',
    "role": 'add "role": one of labels, weights, asset',
}


def _translate(error: Any) -> Iterator[Finding]:
    path: list[str | int] = list(error.absolute_path)
    value = error.instance
    if error.validator == "additionalProperties" and isinstance(value, Mapping):
        allowed = list(error.schema.get("properties", {}))
        for key in value:
            if key not in allowed:
                guess = close_match(key, allowed)
                hint = (
                    f"did you mean {guess!r}?" if guess else f"allowed keys: {', '.join(allowed)}"
                )
                yield Finding(pointer(*path, key), f"unknown key {key!r}", hint, key=True)
    elif error.validator == "required" and isinstance(value, Mapping):
        for key in error.validator_value:
            if key not in value:
                yield Finding(
                    pointer(*path), f"missing required key {key!r}", _required_hint(key, value)
                )
    else:
        handler = _VALUE_HANDLERS.get(error.validator, _fallback)
        yield handler(error, path, pointer(*path), _field(path))


def _fallback(error: Any, path: list[str | int], at: str, name: str) -> Finding:
    return Finding(at, error.message)


def _enum(error: Any, path: list[str | int], at: str, name: str) -> Finding:
    allowed = [str(v) for v in error.validator_value]
    guess = close_match(error.instance, allowed) if isinstance(error.instance, str) else None
    hint = f"allowed: {', '.join(allowed)}"
    message = f"{name} {json_value(error.instance)} is not allowed"
    return Finding(at, message, f"did you mean {guess!r}? {hint}" if guess else hint)


def url_finding(at: str, value: str) -> Finding:
    """``updateURL`` broke the address rule (:mod:`aoe_pack.urls`): say which part."""
    problem = url_problem(value) or "is not a repository address"
    shown = value if len(value) <= 80 else value[:77] + "..."
    return Finding(at, f"updateURL {json_value(shown)} {problem}", URL_HINT)


def _pattern(error: Any, path: list[str | int], at: str, name: str) -> Finding:
    if name == "updateURL":
        return url_finding(at, str(error.instance))
    problem, hint = _PATTERNS.get(name, ("has an invalid form", None))
    value = str(error.instance)
    return Finding(at, f"{name} {json_value(value)} {problem}", _pattern_hint(name, value, hint))


def _max_length(error: Any, path: list[str | int], at: str, name: str) -> Finding:
    if name == "updateURL":
        return url_finding(at, str(error.instance))
    return _fallback(error, path, at, name)


def _type(error: Any, path: list[str | int], at: str, name: str) -> Finding:
    value = error.instance
    wanted = _WANTED_TYPES.get(str(error.validator_value), str(error.validator_value))
    got = _JSON_TYPES.get(type(value), "null" if value is None else "a number")
    hint = _type_hint(name, value, str(error.validator_value))
    return Finding(at, f"{name} must be {wanted}, not {got}", hint)


def _minimum(error: Any, path: list[str | int], at: str, name: str) -> Finding:
    message = f"{name} must be at least {error.validator_value}, not {error.instance}"
    return Finding(at, message, "use a size, or -1 for a dynamic dimension")


def _items(error: Any, path: list[str | int], at: str, name: str) -> Finding:
    if path and path[-1] == "range":
        return Finding(at, "range must hold exactly two numbers", "write [min, max]")
    return _fallback(error, path, at, name)


def _min_length(error: Any, path: list[str | int], at: str, name: str) -> Finding:
    return Finding(at, f"{name} must not be empty")


_VALUE_HANDLERS: Mapping[str, Callable[[Any, list[str | int], str, str], Finding]] = {
    "enum": _enum,
    "pattern": _pattern,
    "maxLength": _max_length,
    "type": _type,
    "minimum": _minimum,  # only shapes have a minimum
    "minItems": _items,
    "maxItems": _items,
    "minLength": _min_length,
}


def _required_hint(key: str, instance: Mapping[str, Any]) -> str | None:
    for present in instance:
        if close_match(present, [key]):
            return f"{present!r} looks like a misspelling of {key!r}"
    return _REQUIRED_HINTS.get(key)


def _pattern_hint(name: str, value: str, hint: str | None) -> str | None:
    if name in ("version", "minAppVersion"):
        if re.fullmatch(r"v?[0-9]+(\.[0-9]+)?", value):
            return f'semantic versions have three parts: "{_three_parts(value.lstrip("v"))}"'
        if value.startswith("v"):
            return f'drop the leading "v": "{value[1:]}"'
    if name == "modelName" and "/" in value:
        return "move the folder part into modelDir; modelName is only the file name"
    return hint


def _type_hint(name: str, value: Any, wanted: str) -> str | None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if name in ("version", "minAppVersion") and number:
        return f'quote it and use three parts: "{_three_parts(str(value))}"'
    if wanted == "boolean":
        return "write true or false, without quotes"
    if wanted == "string" and number:
        return "put the value in double quotes"
    return None


def _three_parts(version: str) -> str:
    parts = version.split(".")
    return ".".join(parts + ["0"] * (3 - len(parts)))
