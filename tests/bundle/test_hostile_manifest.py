"""Manifests whose parse would cost memory out of proportion to their bytes.

A 16 MiB manifest of ``{}`` objects is 5.6 million dicts (600 MB, 7 s) once
``json.loads`` has built it. The reader counts a manifest's JSON values
before it builds any, and refuses a files list longer than the container
could hold before it wraps any item. benchmarks/bench_hostile_memory.py
measures what the limits leave.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from _tamper import resign, take_apart
from hypothesis import given
from hypothesis import strategies as st

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack._jcs import canonical_json, json_value_count, json_values_beyond
from aoe_pack.bundle import inspect_bundle, verify_bundle
from aoe_pack.bundle.format import DEFAULT_LIMITS
from aoe_pack.bundle.manifest import MAX_MANIFEST_VALUES
from aoe_pack.errors import LimitExceededError


def hostile(built_bundle, signer: PrivateKey, tmp_path: Path, manifest: bytes) -> Path:
    """The honest bundle's payloads under ``manifest``, signed by the trusted signer."""
    parts = take_apart(built_bundle())
    path = tmp_path / "hostile.aoe"
    path.write_bytes(resign(manifest, parts.payloads, [signer]))
    return path


def test_manifest_with_more_json_values_than_the_limit_is_limit_exceeded(
    built_bundle, signer: PrivateKey, tmp_path: Path
) -> None:
    manifest = b"[" + b"0," * MAX_MANIFEST_VALUES + b"0]"  # the list and limit + 1 zeros
    bundle = hostile(built_bundle, signer, tmp_path, manifest)
    message = (
        f"aoe/manifest.json holds {MAX_MANIFEST_VALUES + 2} JSON values; "
        f"the limit is {MAX_MANIFEST_VALUES}"
    )
    for read in (inspect_bundle, lambda b: verify_bundle(b, trusted_keys=[signer.public])):
        with pytest.raises(LimitExceededError) as e:
            read(bundle)
        assert e.value.message == message


def test_manifest_listing_more_files_than_the_container_can_hold_is_limit_exceeded(
    built_bundle, signer: PrivateKey, tmp_path: Path
) -> None:
    parts = take_apart(built_bundle())
    doc = parts.manifest()
    doc["files"] = [{}] * (DEFAULT_LIMITS.max_entries + 1)
    bundle = hostile(built_bundle, signer, tmp_path, canonical_json(doc))
    with pytest.raises(LimitExceededError) as e:
        inspect_bundle(bundle)
    assert e.value.message == (
        f"manifest.files lists {DEFAULT_LIMITS.max_entries + 1} files; "
        f"a bundle holds at most {DEFAULT_LIMITS.max_entries}"
    )


def _built(value: object) -> int:
    """How many values (and member names) json.loads builds for ``value``."""
    if isinstance(value, dict):
        return 1 + sum(1 + _built(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_built(v) for v in value)
    return 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=40,
)


@given(JSON, st.sampled_from([None, 0, 2]), st.sampled_from([1, 2, 3, 8, 64, 1 << 18]))
def test_json_value_count_is_what_json_loads_builds(
    value: object, indent: int | None, window: int
) -> None:
    """Exact for any JSON text: strings full of brackets, escapes and whitespace included,
    and wherever the windows fall (inside strings, escapes, ``[ ]``)."""
    text = json.dumps(value, indent=indent, ensure_ascii=False).encode()
    assert json_value_count(text, window=window) == _built(json.loads(text))


def test_unclosed_string_of_escaped_quotes_is_counted_in_one_pass() -> None:
    """``"\\"\\"\\"…`` never closes: a scan that restarts at every quote is quadratic
    (a 1 MiB root took most of an hour, before any signature was checked)."""
    text = b'"' + b'\\"' * (1 << 19) + b"," * 1001
    started = time.process_time()
    assert json_value_count(text) == 1  # the parser fails at that string, building nothing
    assert json_values_beyond(text, 1000) is None
    # Linear work is milliseconds; the quadratic scan took tens of minutes.
    assert time.process_time() - started < 30


@pytest.mark.parametrize("window", [1, 2, 3, 7, 64])
def test_string_left_open_across_windows_is_carried_to_the_next(window: int) -> None:
    text = json.dumps({'a\\"b': ["x,y", "\\\\", {"k:": []}]}).encode()
    assert json_value_count(text, window=window) == _built(json.loads(text))
