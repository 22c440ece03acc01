"""Each judge of a provenance statement refuses each broken variant, one attack per test.

The statement is the one aoe-pack writes for a converted-looking bundle; each
test breaks one thing and requires both the in-toto protobuf messages and
schemas/provenance-statement.schema.json to refuse it, so neither judge can
pass what the other refuses, nor quietly pass everything.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from _statement_checks import protobuf_problem, schema_problems

from aoe_pack.bundle import inspect_bundle
from aoe_pack.interop import slsa


@pytest.fixture(scope="module")
def statement(p256_bundle: Path) -> dict[str, Any]:
    """aoe-pack's statement of the bundle, given a conversion with parity and its tools."""
    manifest = inspect_bundle(p256_bundle).manifest
    record = {
        "target": "tflite-fp16",
        "runtime": "tflite",
        "variant": "fp16",
        "status": "ok",
        "files": ["tflite/fp16/mnist.tflite"],
        "tools": {"tensorflow": "2.21.0"},
        "parity": {"samples": 8, "passed": True, "maxAbs": "1.050e-05", "top1": "1.0000"},
    }
    provenance = {**manifest.provenance, "conversions": [record]}
    return slsa.provenance_statement(
        bundle_name="mnist.aoe",
        bundle_sha256="ab" * 32,
        manifest=dataclasses.replace(manifest, provenance=provenance),
        plaintext_checked=True,
    )


def _refused_by_both(doc: dict[str, Any]) -> tuple[list[str], str | None]:
    schema, proto = schema_problems(doc), protobuf_problem(doc)
    assert schema != [], "the JSON Schema accepted it"
    assert proto is not None, "the protobuf messages accepted it"
    return schema, proto


def _predicate(doc: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = doc["predicate"]
    return found


def test_the_statement_as_written_passes_both(statement: dict[str, Any]) -> None:
    assert schema_problems(statement) == []
    assert protobuf_problem(statement) is None


def test_run_metadata_with_rfc3339_times_passes_both(statement: dict[str, Any]) -> None:
    """A control for the timestamp attack: times in the right form are accepted."""
    doc = copy.deepcopy(statement)
    _predicate(doc)["runDetails"]["metadata"] = {
        "invocationId": "build-7",
        "startedOn": "2026-12-06T10:00:00Z",
        "finishedOn": "2026-12-06T10:00:01.5+01:00",
    }
    assert schema_problems(doc) == []
    assert protobuf_problem(doc) is None


def test_an_unknown_top_level_field_is_refused(statement: dict[str, Any]) -> None:
    doc = {**copy.deepcopy(statement), "signedBy": "someone"}
    _, proto = _refused_by_both(doc)
    assert "ParseError" in str(proto)


def test_an_unknown_predicate_field_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    _predicate(doc)["runDetails"]["builderName"] = "aoe-pack"
    _refused_by_both(doc)


def test_a_misspelt_builder_field_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    builder = _predicate(doc)["runDetails"]["builder"]
    builder["idd"] = builder.pop("id")
    _refused_by_both(doc)


def test_a_snake_case_predicate_type_is_refused(statement: dict[str, Any]) -> None:
    """protobuf's ParseDict alone takes predicate_type for predicateType; no JSON reader does."""
    doc = copy.deepcopy(statement)
    doc["predicate_type"] = doc.pop("predicateType")
    _, proto = _refused_by_both(doc)
    assert "'predicate_type' is no JSON name" in str(proto)


def test_a_snake_case_build_definition_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    predicate = _predicate(doc)
    predicate["build_definition"] = predicate.pop("buildDefinition")
    _refused_by_both(doc)


def test_the_protobuf_field_name_type_for_underscore_type_is_refused(
    statement: dict[str, Any],
) -> None:
    """The Statement's ``_type`` is the field ``type`` in the .proto: only ``_type`` is JSON."""
    doc = copy.deepcopy(statement)
    doc["type"] = doc.pop("_type")
    _refused_by_both(doc)


def test_a_missing_builder_id_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    del _predicate(doc)["runDetails"]["builder"]["id"]
    _, proto = _refused_by_both(doc)
    assert "Builder.Id required" in str(proto)


def test_a_missing_build_type_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    del _predicate(doc)["buildDefinition"]["buildType"]
    _, proto = _refused_by_both(doc)
    assert "BuildType required" in str(proto)


def test_missing_external_parameters_are_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    del _predicate(doc)["buildDefinition"]["externalParameters"]
    _, proto = _refused_by_both(doc)
    assert "ExternalParameters required" in str(proto)


def test_a_bad_timestamp_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    _predicate(doc)["runDetails"]["metadata"] = {"startedOn": "yesterday"}
    _, proto = _refused_by_both(doc)
    assert "ParseError" in str(proto)


def test_a_timestamp_without_a_zone_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    _predicate(doc)["runDetails"]["metadata"] = {"finishedOn": "2026-12-06T10:00:00"}
    _refused_by_both(doc)


def test_a_subject_without_a_digest_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    del doc["subject"][0]["digest"]
    _, proto = _refused_by_both(doc)
    assert "digest required" in str(proto)


def test_no_subject_at_all_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    doc["subject"] = []
    _refused_by_both(doc)


def test_a_sha256_digest_that_is_not_hex_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    doc["subject"][1]["digest"]["sha256"] = "zz" * 32
    _refused_by_both(doc)


def test_a_sha256_digest_of_the_wrong_length_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    _predicate(doc)["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"] = "ab" * 31
    _refused_by_both(doc)


def test_a_digest_value_that_is_not_a_string_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    doc["subject"][0]["digest"]["sha256"] = 1
    _refused_by_both(doc)


def test_a_byproduct_naming_nothing_is_refused(statement: dict[str, Any]) -> None:
    doc = copy.deepcopy(statement)
    _predicate(doc)["runDetails"]["byproducts"].append({"annotations": {"note": "what?"}})
    _, proto = _refused_by_both(doc)
    assert "At least one of name, URI, or digest" in str(proto)


def test_another_statement_type_is_refused(statement: dict[str, Any]) -> None:
    doc = {**copy.deepcopy(statement), "_type": "https://in-toto.io/Statement/v0.1"}
    _, proto = _refused_by_both(doc)
    assert "Wrong statement type" in str(proto)
