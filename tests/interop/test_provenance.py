"""`export provenance`: the build's provenance as a signed in-toto statement (SLSA Provenance v1).

Every statement written here is judged twice (tests/interop/_statement_checks.py):
by the in-toto protobuf messages and validators, and by the JSON Schema that
aoe-pack publishes; and its DSSE signature by aoe-pack's own verifier.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from _interop import REPO, Keys, aoe
from _statement_checks import SCHEMA, protobuf_problem, schema_problems
from jsonschema import Draft202012Validator

from aoe_pack.bundle import inspect_bundle
from aoe_pack.errors import SignatureError, ThresholdError
from aoe_pack.interop import open_envelope, slsa
from aoe_pack.keys import load_public_key


def _export(bundle: Path, key: Path, out: Path, *extra: object) -> dict[str, Any]:
    doc = aoe(
        "export", "provenance", bundle, "--sign-key", key, "--out", out, *extra, json=True
    ).expect()
    assert isinstance(doc, dict)
    return doc


def _statement(envelope: Path) -> dict[str, Any]:
    doc = json.loads(envelope.read_bytes())
    found: dict[str, Any] = json.loads(base64.b64decode(doc["payload"]))
    return found


def _assert_valid(statement: dict[str, Any]) -> None:
    assert schema_problems(statement) == []
    assert protobuf_problem(statement) is None


@pytest.fixture(scope="module")
def exported(p256_bundle: Path, keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("provenance") / "mnist.aoe.intoto.jsonl"
    _export(p256_bundle, keys.key("p256"), out, "--decryption-key", keys.key("device"))
    return out


def test_the_envelope_is_one_line_of_json_as_the_schema_describes(exported: Path) -> None:
    text = exported.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert text.count("\n") == 1  # a JSON document and a JSON Lines file at once
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    envelope_schema = {**schema["$defs"]["envelope"], "$defs": schema["$defs"]}
    assert list(Draft202012Validator(envelope_schema).iter_errors(json.loads(text))) == []


def test_the_statement_is_valid_slsa_provenance(exported: Path) -> None:
    _assert_valid(_statement(exported))


def test_the_dsse_signature_verifies_under_the_exporting_key(exported: Path, keys: Keys) -> None:
    statement = open_envelope(
        exported.read_bytes(), trusted_keys=[load_public_key(str(keys.pub("p256")))]
    )
    assert statement == _statement(exported)
    assert statement["predicateType"] == slsa.PREDICATE_TYPE


def test_another_key_does_not_verify_it(exported: Path, keys: Keys) -> None:
    with pytest.raises(ThresholdError):
        open_envelope(
            exported.read_bytes(), trusted_keys=[load_public_key(str(keys.pub("stranger")))]
        )


def test_a_changed_statement_fails_its_signature(exported: Path, keys: Keys) -> None:
    """Someone claims another source model: the payload no longer matches the signature."""
    envelope = json.loads(exported.read_bytes())
    statement = _statement(exported)
    (source,) = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    source["digest"]["sha256"] = "0" * 64
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(ThresholdError, match="0 valid signature"):
        open_envelope(
            json.dumps(envelope).encode(),
            trusted_keys=[load_public_key(str(keys.pub("p256")))],
        )


def test_a_changed_payload_type_is_refused(exported: Path, keys: Keys) -> None:
    envelope = json.loads(exported.read_bytes())
    envelope["payloadType"] = "application/json"
    with pytest.raises(SignatureError, match="payloadType"):
        open_envelope(
            json.dumps(envelope).encode(),
            trusted_keys=[load_public_key(str(keys.pub("p256")))],
        )


def test_the_subjects_are_the_bundle_file_and_each_model_file_unpack_writes(
    exported: Path, p256_bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    folder = tmp_path / "mnist"
    aoe(
        "unpack", p256_bundle, "--out", folder, "--trusted-key", keys.pub("p256"),
        "--decryption-key", keys.key("device"), json=True,
    ).expect()  # fmt: skip
    on_disk = {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }
    subjects = {s["name"]: s["digest"]["sha256"] for s in _statement(exported)["subject"]}
    assert subjects == {
        "mnist.aoe": hashlib.sha256(p256_bundle.read_bytes()).hexdigest(),
        **on_disk,
    }


def test_the_build_definition_holds_the_config_and_the_source_digest(
    exported: Path, p256_bundle: Path, mnist_config: Path
) -> None:
    manifest = inspect_bundle(p256_bundle).manifest
    build = _statement(exported)["predicate"]["buildDefinition"]
    assert build["buildType"] == slsa.BUILD_TYPE
    assert build["externalParameters"]["config"] == manifest.config
    assert build["externalParameters"]["targets"] == []  # packed as it is
    assert build["externalParameters"]["recipients"] == [
        r.keyid for r in manifest.encryption.recipients
    ]
    source_digest = hashlib.sha256((mnist_config.parent / "mnist.tflite").read_bytes())
    assert build["resolvedDependencies"] == [
        {"name": "mnist.tflite", "digest": {"sha256": source_digest.hexdigest()}}
    ]


def test_the_builder_and_its_versions_are_those_the_bundle_recorded(
    exported: Path, p256_bundle: Path
) -> None:
    recorded = inspect_bundle(p256_bundle).manifest.provenance
    run = _statement(exported)["predicate"]["runDetails"]
    assert run["builder"] == {
        "id": slsa.BUILDER_ID,
        "version": {"aoe-pack": recorded["builder"]["version"], **recorded["tools"]},
    }
    assert "metadata" not in run  # no times: builds record none


def test_exporting_twice_writes_the_same_bytes(
    exported: Path, p256_bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    """Deterministic ECDSA over canonical JSON, and no time in the statement."""
    again = tmp_path / "again.jsonl"
    _export(p256_bundle, keys.key("p256"), again, "--decryption-key", keys.key("device"))
    assert again.read_bytes() == exported.read_bytes()


def test_the_statement_says_whether_the_model_digests_were_recomputed(
    exported: Path, p256_bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    """An encrypted bundle exported without its key: its signers' digests, and it says so."""
    trusted = tmp_path / "trusted.jsonl"
    _export(p256_bundle, keys.key("p256"), trusted, "--trust-recorded-digests")

    recorded = _statement(trusted)["predicate"]["buildDefinition"]["internalParameters"]
    recomputed = _statement(exported)["predicate"]["buildDefinition"]["internalParameters"]
    assert (recorded["plaintextChecked"], recomputed["plaintextChecked"]) == (False, True)
    _assert_valid(_statement(trusted))


def test_an_ed25519_key_signs_provenance_too(
    ed25519_bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    out = tmp_path / "p.jsonl"
    _export(ed25519_bundle, keys.key("ed25519"), out)
    statement = open_envelope(
        out.read_bytes(), trusted_keys=[load_public_key(str(keys.pub("ed25519")))]
    )
    _assert_valid(statement)


def test_a_feature_bundle_names_each_models_targets_and_sources(p256_bundle: Path) -> None:
    """Several models in one bundle: provenance per model, under ``models``."""
    manifest = inspect_bundle(p256_bundle).manifest

    def model(source: str, target: str) -> dict[str, Any]:
        record = {"target": target, "status": "ok", "tools": {"mnn": "3.6.1"}}
        return {
            "source": {"path": source, "sha256": hashlib.sha256(source.encode()).hexdigest()},
            "conversions": [record],
            "refused": [{"target": "ncnn-fp32", "status": "refused", "code": "model-unsupported"}],
            "parityInconclusive": [target],
        }

    feature = dataclasses.replace(
        manifest,
        provenance={
            "builder": {"name": "aoe-pack", "version": "0.1.0"},
            "tools": {"python": "3.11.7"},
            "models": {
                "recognizer": model("r.onnx", "mnn-fp32"),
                "detector": model("d.onnx", "mnn-fp16"),
            },
        },
    )
    statement = slsa.provenance_statement(
        bundle_name="bankcard.aoe", bundle_sha256="ab" * 32, manifest=feature,
        plaintext_checked=True,
    )  # fmt: skip
    _assert_valid(statement)
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["targets"] == [
        "detector/mnn-fp16", "detector/ncnn-fp32", "recognizer/mnn-fp32", "recognizer/ncnn-fp32",
    ]  # fmt: skip
    sources = [d for d in build["resolvedDependencies"] if "digest" in d]
    assert [(d["name"], d["annotations"]["model"]) for d in sources] == [
        ("d.onnx", "detector"),
        ("r.onnx", "recognizer"),
    ]
    (mnn,) = [d for d in build["resolvedDependencies"] if d["name"] == "mnn"]
    assert mnn["annotations"] == {
        "version": "3.6.1",
        "targets": ["detector/mnn-fp16", "recognizer/mnn-fp32"],
    }
    names = [b["name"] for b in statement["predicate"]["runDetails"]["byproducts"]]
    assert "detector/parity-inconclusive" in names
    assert "conversion/recognizer/ncnn-fp32" in names


def test_provenance_from_another_writer_keeps_only_what_fits(p256_bundle: Path) -> None:
    """Provenance is free-form (docs/format.md §5.2): odd values are left out, never fatal."""
    manifest = inspect_bundle(p256_bundle).manifest
    odd = dataclasses.replace(
        manifest,
        provenance={
            "builder": "someone",
            "tools": {"python": 3, "converter": "2.0"},
            "source": {"path": "m.bin", "sha256": "not hex"},
            "conversions": [{"target": 7}, "text", {"target": "x-y", "status": "ok"}],
        },
    )
    statement = slsa.provenance_statement(
        bundle_name="b.aoe", bundle_sha256="cd" * 32, manifest=odd, plaintext_checked=True
    )
    _assert_valid(statement)
    predicate = statement["predicate"]
    assert predicate["runDetails"]["builder"]["version"] == {"converter": "2.0"}
    assert predicate["buildDefinition"]["resolvedDependencies"] == [{"name": "m.bin"}]
    assert predicate["buildDefinition"]["externalParameters"]["targets"] == ["x-y"]


def test_the_schema_names_the_protobuf_definitions_it_derives_from() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    for name in ("statement.proto", "resource_descriptor.proto", "provenance.proto"):
        assert name in schema["description"]
    assert (REPO / "schemas" / SCHEMA.name).is_file()
