"""Repository documents whose parse would cost memory out of proportion to their bytes.

A root or manifest comes from a repository the device does not trust yet:
``envelope.parse`` reads it before any signature is checked. A 32 MiB
``[{},{},...]`` was 11 million dicts. Values are counted before parsing.
"""

from __future__ import annotations

import pytest

from aoe_pack._crypto import asymmetric as keys
from aoe_pack.errors import RepositoryFormatError
from aoe_pack.repository import envelope
from aoe_pack.repository.limits import DEFAULT_LIMITS


def test_envelope_with_more_json_values_than_the_limit_is_refused_before_parsing() -> None:
    data = b"[" + b"{}," * DEFAULT_LIMITS.max_envelope_values + b"{}]"
    with pytest.raises(RepositoryFormatError) as e:
        envelope.parse(data, envelope.MANIFEST_TYPE, what="manifest.json")
    assert e.value.message == (
        f"manifest.json holds {DEFAULT_LIMITS.max_envelope_values + 2} JSON values; "
        f"the limit is {DEFAULT_LIMITS.max_envelope_values}"
    )


def test_signed_payload_with_more_json_values_than_the_limit_is_refused_before_parsing() -> None:
    signer = keys.generate(keys.KeyKind.ED25519)
    document = [0] * (DEFAULT_LIMITS.max_document_values + 1)
    data = envelope.sign(envelope.MANIFEST_TYPE, document, [signer]).to_bytes()
    with pytest.raises(RepositoryFormatError) as e:
        envelope.parse(data, envelope.MANIFEST_TYPE, what="manifest.json")
    assert e.value.message == (
        f"manifest.json: the signed payload holds {DEFAULT_LIMITS.max_document_values + 2} "
        f"JSON values; the limit is {DEFAULT_LIMITS.max_document_values}"
    )
