"""``awskms://`` references: cosign's forms are taken, anything else is named and refused.

A malformed reference is a command line that is wrong in itself: exit code 2,
before any AWS setting is read or any request made.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli import NO_PASSWORD, Cli

from aoe_pack.errors import KeyReferenceError
from aoe_pack.signers.awskms import KmsKeyRef, MessageType

aoe = Cli(env=NO_PASSWORD)

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-2:111122223333:key/{KEY_ID}"
ALIAS_ARN = "arn:aws:kms:us-east-2:111122223333:alias/ExampleAlias"


@pytest.mark.parametrize(
    ("ref", "key", "endpoint", "region", "message_type"),
    [
        (f"awskms:///{KEY_ID}", KEY_ID, None, None, None),
        ("awskms:///mrk-1234abcd12ab34cd56ef1234567890ab",
         "mrk-1234abcd12ab34cd56ef1234567890ab", None, None, None),
        ("awskms:///alias/ExampleAlias", "alias/ExampleAlias", None, None, None),
        ("awskms:///alias/team/release_key-2", "alias/team/release_key-2", None, None, None),
        (f"awskms:///{KEY_ARN}", KEY_ARN, None, "us-east-2", None),
        (f"awskms:///{ALIAS_ARN}", ALIAS_ARN, None, "us-east-2", None),
        ("awskms:///arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/a",
         "arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/a", None, "us-gov-west-1", None),
        (f"awskms://localhost:4566/{KEY_ID}", KEY_ID, "https://localhost:4566", None, None),
        (f"awskms://kms.example.com/{ALIAS_ARN}", ALIAS_ARN, "https://kms.example.com",
         "us-east-2", None),
        ("awskms:///alias/a?message-type=raw", "alias/a", None, None, MessageType.RAW),
        ("awskms:///alias/a?message-type=digest", "alias/a", None, None, MessageType.DIGEST),
        ("AWSKMS:///alias/a", "alias/a", None, None, None),
    ],
)  # fmt: skip
def test_cosigns_reference_forms_are_taken(
    ref: str, key: str, endpoint: str | None, region: str | None, message_type: MessageType | None
) -> None:
    assert KmsKeyRef.parse(ref) == KmsKeyRef(
        ref=ref, key=key, endpoint=endpoint, region=region, message_type=message_type
    )


FORMS = (
    "the forms are awskms:///KEY-ID, awskms:///alias/NAME, "
    "awskms:///arn:aws:kms:REGION:ACCOUNT:key/KEY-ID, "
    "awskms:///arn:aws:kms:REGION:ACCOUNT:alias/NAME; awskms://HOST:PORT/... for another endpoint"
)


@pytest.mark.parametrize(
    "ref",
    [
        "awskms:///",
        "awskms:///release",  # neither a key id nor alias/...
        "awskms:///1234abcd-12ab-34cd-56ef-1234567890",  # a digit short
        "awskms:///alias/",
        "awskms:///alias/has space",
        "awskms:///arn:aws:kms:us-east-2:1111:key/" + KEY_ID,  # not a 12-digit account
        "awskms:///arn:aws:s3:us-east-2:111122223333:key/" + KEY_ID,  # not kms
        "awskms:///arn:aws:kms:us-east-2:111122223333:key/release",
        "awskms:///alias/a#fragment",
        "awskms:",
    ],
)
def test_a_reference_in_no_form_is_refused_naming_the_forms(ref: str) -> None:
    with pytest.raises(KeyReferenceError) as info:
        KmsKeyRef.parse(ref)

    assert info.value.message == f"{ref} is not an AWS KMS key reference"
    assert info.value.hint == FORMS


@pytest.mark.parametrize("ref", ["awskms://alias/release", f"awskms://{KEY_ARN}"])
def test_two_slashes_before_a_key_are_pointed_out(ref: str) -> None:
    """``awskms://alias/x`` reads as endpoint ``alias``, key ``x``: the third slash is missing."""
    with pytest.raises(KeyReferenceError) as info:
        KmsKeyRef.parse(ref)

    assert info.value.message == f"{ref} is not an AWS KMS key reference"
    assert info.value.hint == (
        "three slashes before a key: awskms:///alias/NAME (awskms://HOST/ names an endpoint)"
    )


@pytest.mark.parametrize("host", ["localhost:99999", "localhost:port", "user@localhost", ":443"])
def test_an_endpoint_that_is_not_host_and_port_is_refused(host: str) -> None:
    ref = f"awskms://{host}/alias/a"
    with pytest.raises(KeyReferenceError) as info:
        KmsKeyRef.parse(ref)

    assert info.value.message == f"{ref}: {host!r} is not an endpoint (HOST or HOST:PORT)"


@pytest.mark.parametrize(
    "query", ["region=us-east-1", "message-type=raw&message-type=raw", "message-type", "=raw"]
)
def test_an_option_other_than_message_type_is_refused(query: str) -> None:
    ref = f"awskms:///alias/a?{query}"
    with pytest.raises(KeyReferenceError) as info:
        KmsKeyRef.parse(ref)

    assert info.value.message == (
        f"{ref}: the only option of an awskms:// reference is message-type, once"
    )


def test_a_message_type_other_than_digest_or_raw_is_refused() -> None:
    with pytest.raises(KeyReferenceError) as info:
        KmsKeyRef.parse("awskms:///alias/a?message-type=RAW")

    assert info.value.message == (
        "awskms:///alias/a?message-type=RAW: message-type is digest or raw, not 'RAW'"
    )


def test_a_malformed_reference_is_a_usage_error_before_aws_is_asked(
    mnist_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The AWS profile named here does not exist: the reference alone is enough to refuse."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing"))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")

    r = aoe("build", mnist_config, "--out", tmp_path / "m.aoe", "--sign-key", "awskms:///release",
            json=True)  # fmt: skip

    assert r.exit_code == 2
    assert r.doc["error"]["code"] == "key-reference"
