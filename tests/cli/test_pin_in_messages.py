"""A PIN written into a key reference reaches no message, text or ``--json``, however it is spelt.

``pkcs11:...?pin-value=PIN`` is a valid reference (RFC 7512), so it gets to
wherever a key reference goes: a password source's error, a duplicate
``--key-password``, ``--trusted-key`` or ``--decryption-key`` (which read
files, and say the "key file" does not exist), a URI the parser refuses. Each
shows the reference through ``display_ref``, mistyped spellings included.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli import NO_PASSWORD, Cli

from aoe_pack._crypto import asymmetric as _keys
from aoe_pack.keys import display_ref

PIN = "73915286"
MODULE = "/usr/lib/softhsm/libsofthsm2.so"

aoe = Cli(env=NO_PASSWORD)

SPELLINGS = [
    f"pin-value={PIN}",
    f"x-pin-value={PIN}",
    f"pin_value={PIN}",
    f"pin%2Dvalue={PIN}",
    f"p%69n-value={PIN}",
    f"PIN-VALUE={PIN}",
    f"pin value={PIN}",
    f"pin%20value={PIN}",
    f"pin-value{PIN}",
    f"pin-value={PIN[:4]}&{PIN[4:]}",
]


def _uri(spelling: str) -> str:
    return f"pkcs11:token=t;object=k?module-path={MODULE}&{spelling}"


@pytest.fixture(scope="module")
def pub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signer's public key, for the commands that read one before the reference."""
    path = tmp_path_factory.mktemp("keys") / "signer.pub"
    path.write_bytes(_keys.generate(_keys.KeyKind.ED25519).public.pem)
    return path


def _paths(uri: str, pub: Path = Path("signer.pub")) -> dict[str, tuple[object, ...]]:
    """Each command line that shows ``uri`` in its error."""
    return {
        "password-file-missing": (
            "public-key", "--sign-key", uri, "--key-password", uri, "/nonexistent/pin",
        ),
        "password-variable-unset": (
            "public-key", "--sign-key", uri, "--key-password", uri, "env://AOE_TEST_UNSET_PIN",
        ),
        "key-password-twice": (
            "public-key", "--sign-key", uri,
            "--key-password", uri, "env://A", "--key-password", uri, "env://B",
        ),
        "key-password-for-another-key": (
            "public-key", "--sign-key", uri, "--key-password", "other.key", "env://A",
        ),
        "trusted-key": ("verify", "/nonexistent.aoe", "--trusted-key", uri),
        "decryption-key": (
            "verify", "/nonexistent.aoe", "--trusted-key", pub, "--decryption-key", uri,
        ),
        "sign-key": ("public-key", "--sign-key", uri),
    }  # fmt: skip


@pytest.mark.parametrize("path", sorted(_paths("")))
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_pin_in_a_key_reference_reaches_no_message(path: str, spelling: str, pub: Path) -> None:
    args = _paths(_uri(spelling), pub)[path]
    for json in (False, True):
        r = aoe(*args, json=json)
        assert r.exit_code in (1, 2), r.output
        assert PIN not in r.stdout, r.stdout
        assert PIN not in r.stderr, r.stderr
        assert PIN[:4] not in r.output, r.output
        assert "***" in r.output, r.output  # the reference is shown, its PIN hidden


@pytest.mark.parametrize(
    ("ref", "shown"),
    [
        (_uri(f"pin-value={PIN}"), _uri("pin-value=***")),
        (_uri(f"pin_value={PIN}"), _uri("pin_value=***")),
        (_uri(f"pin%2Dvalue={PIN}"), _uri("pin%2Dvalue=***")),
        (_uri(f"pin value={PIN}"), _uri("pin value=***")),
        (_uri(f"pin-value{PIN}"), _uri("***")),
        (f"pkcs11:pin-value{PIN}", "pkcs11:***"),
        (_uri(f"pin-value={PIN}&{PIN}&module-name=m"), _uri("pin-value=***&module-name=m")),
        ("pkcs11:object=k?pin-source=file:/etc/pin", "pkcs11:object=k?pin-source=file:/etc/pin"),
        ("awskms:///alias/pinned-release", "awskms:///alias/pinned-release"),
        ("env://PIN", "env://PIN"),
        ("keys/pin=1234.key", "keys/pin=1234.key"),
        ("C:\\keys\\pin-value=1.key", "C:\\keys\\pin-value=1.key"),
    ],
)  # fmt: skip
def test_display_ref_hides_secret_attributes_and_nothing_else(ref: str, shown: str) -> None:
    assert display_ref(ref) == shown
    assert display_ref(shown) == shown
