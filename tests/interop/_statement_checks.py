"""Two independent judges of an in-toto Statement v1 with a SLSA Provenance v1 predicate.

Neither in-toto nor SLSA publishes a JSON Schema; their definitions are the
protobuf messages of the in-toto-attestation package. So a statement is
checked twice:

- :func:`protobuf_problem`: the authoritative messages. ``json_format.ParseDict``
  with unknown fields refused, then the required fields that in-toto's own
  validators require (``Statement.validate()`` of the Python package, and the
  ``Validate()`` methods of ``go/predicates/provenance/v1/provenance.go`` and
  ``go/v1/resource_descriptor.go`` in github.com/in-toto/attestation, redone
  here since the Python package has none for provenance). ParseDict also takes
  a field's protobuf name (``predicate_type``) for its JSON name
  (``predicateType``), which no other reader of the JSON does: each key is
  checked to be its field's JSON name.
- :func:`schema_problems`: schemas/provenance-statement.schema.json, which
  aoe-pack publishes, derived from those messages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import resource_descriptor_pb2, statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from jsonschema import Draft202012Validator

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "provenance-statement.schema.json"
SLSA_V1 = "https://slsa.dev/provenance/v1"

# Digest sizes in bytes that resource_descriptor.go checks; other algorithms pass as they are.
_DIGEST_SIZES = {
    "md5": 16, "sha1": 20, "sha224": 28, "sha512_224": 28, "sha256": 32, "sha512_256": 32,
    "sha384": 48, "sha512": 64, "sha3_224": 28, "sha3_256": 32, "sha3_384": 48,
    "sha3_512": 64, "gitCommit": 20, "dirHash": 32,
}  # fmt: skip


def schema_problems(doc: Any) -> list[str]:
    """What schemas/provenance-statement.schema.json finds wrong with ``doc`` (none: valid)."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(doc)
    ]


def protobuf_problem(doc: Any) -> str | None:
    """What the in-toto protobuf messages and validators refuse in ``doc`` (None: valid)."""
    try:
        _protobuf_validate(doc)
    except (json_format.ParseError, ValueError, TypeError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def _protobuf_validate(doc: Any) -> None:
    pb = json_format.ParseDict(doc, statement_pb2.Statement(), ignore_unknown_fields=False)
    _json_names(doc, statement_pb2.Statement.DESCRIPTOR, "statement")
    Statement.copy_from_pb(pb).validate()
    for i, subject in enumerate(pb.subject):
        _descriptor(subject, f"subject[{i}]")
    if pb.predicate_type != SLSA_V1:
        return
    predicate = doc["predicate"]
    prov = json_format.ParseDict(
        predicate, provenance_pb2.Provenance(), ignore_unknown_fields=False
    )
    _json_names(predicate, provenance_pb2.Provenance.DESCRIPTOR, "predicate")
    if not prov.HasField("build_definition"):
        raise ValueError("BuildDefinition required")
    build = prov.build_definition
    if not build.build_type:
        raise ValueError("BuildDefinition.BuildType required")
    if not build.HasField("external_parameters"):
        raise ValueError("BuildDefinition.ExternalParameters required")
    for i, rd in enumerate(build.resolved_dependencies):
        _descriptor(rd, f"resolvedDependencies[{i}]")
    if not prov.HasField("run_details"):
        raise ValueError("RunDetails required")
    run = prov.run_details
    if not run.HasField("builder"):
        raise ValueError("RunDetails.Builder required")
    if not run.builder.id:
        raise ValueError("Builder.Id required")
    for i, rd in enumerate(run.builder.builder_dependencies):
        _descriptor(rd, f"builderDependencies[{i}]")
    for i, rd in enumerate(run.byproducts):
        _descriptor(rd, f"byproducts[{i}]")


def _descriptor(rd: resource_descriptor_pb2.ResourceDescriptor, where: str) -> None:
    """ResourceDescriptor.validate(), and the digest checks of resource_descriptor.go."""
    try:
        ResourceDescriptor.copy_from_pb(rd).validate()
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from e
    for algorithm, value in rd.digest.items():
        size = _DIGEST_SIZES.get(algorithm)
        if size is None:
            continue
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"{where}: {algorithm} digest is not valid hex") from None
        if len(raw) != size:
            raise ValueError(f"{where}: digest has incorrect length: {algorithm}")


def _json_names(doc: Any, descriptor: Descriptor, where: str) -> None:
    """Each key of ``doc`` is the JSON name of a field of ``descriptor``, all the way down."""
    if not isinstance(doc, dict):
        return  # ParseDict says what is wrong with a non-object
    fields = {f.json_name: f for f in descriptor.fields}
    for key, value in doc.items():
        field = fields.get(key)
        if field is None:
            raise ValueError(f"{where}: {key!r} is no JSON name of a {descriptor.name} field")
        message = field.message_type
        if message is None or message.GetOptions().map_entry:
            continue
        if message.full_name.startswith("google.protobuf."):
            continue  # Struct, Timestamp: JSON values of their own
        items = value if field.is_repeated and isinstance(value, list) else [value]
        for i, item in enumerate(items):
            _json_names(item, message, f"{where}.{key}" + (f"[{i}]" if field.is_repeated else ""))
