"""RFC 7512 ``pkcs11:`` URIs: the RFC's own examples, and each way one can be wrong.

Every refusal is a KeyReferenceError (exit 2: the reference itself is wrong)
whose message names the attribute and never shows a PIN.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aoe_pack.errors import KeyReferenceError
from aoe_pack.signers._pkcs11_uri import parse, redact

# RFC 7512 §3.3, in order; the last is refused below (vendor attributes without x-).
RFC_EXAMPLES: list[tuple[str, dict[str, str], bytes | None, dict[str, str]]] = [
    ("pkcs11:", {}, None, {}),
    ("pkcs11:object=my-pubkey;type=public", {"object": "my-pubkey", "type": "public"}, None, {}),
    (
        "pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
        {"object": "my-key", "type": "private"},
        None,
        {"pin-source": "file:/etc/token"},
    ),
    (
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;"
        "model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial="
        "?pin-source=file:/etc/token_pin",
        {
            "token": "The Software PKCS#11 Softtoken", "manufacturer": "Snake Oil, Inc.",
            "model": "1.0", "object": "my-certificate", "type": "cert", "serial": "",
        },
        bytes.fromhex("69953e5cf4bdec91"),
        {"pin-source": "file:/etc/token_pin"},
    ),
    (
        "pkcs11:object=my-sign-key;type=private?module-name=mypkcs11",
        {"object": "my-sign-key", "type": "private"},
        None,
        {"module-name": "mypkcs11"},
    ),
    (
        "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
        {"object": "my-sign-key", "type": "private"},
        None,
        {"module-path": "/mnt/libmypkcs11.so.1"},
    ),
    (
        "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc."
        "?pin-value=the-pin",
        {"token": "Software PKCS#11 softtoken", "manufacturer": "Snake Oil, Inc."},
        None,
        {"pin-value": "the-pin"},
    ),
    ("pkcs11:slot-description=Sun%20Metaslot", {"slot-description": "Sun Metaslot"}, None, {}),
    (
        "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;"
        "library-description=Soft%20Token%20Library;library-version=1.23",
        {
            "library-manufacturer": "Snake Oil, Inc.",
            "library-description": "Soft Token Library", "library-version": "1.23",
        },
        None,
        {},
    ),
    (
        "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;"
        "id=%01%02%03%Ba%dd%Ca%fe%04%05%06",
        {"token": "My token% created by Joe", "library-version": "3"},
        bytes.fromhex("010203baddcafe040506"),
        {},
    ),
    (
        "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
        {"token": "A name with a substring %;", "object": "my-certificate", "type": "cert"},
        None,
        {},
    ),
    (
        "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;"
        "object=my-certificate;type=cert",
        {"token": "Name with a small A with acute: \u00e1", "object": "my-certificate",
         "type": "cert"},
        None,
        {},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("uri", "path", "key_id", "query"), RFC_EXAMPLES)
def test_the_examples_of_rfc_7512_parse(
    uri: str, path: dict[str, str], key_id: bytes | None, query: dict[str, str]
) -> None:
    parsed = parse(uri)
    assert (dict(parsed.path), parsed.id, dict(parsed.query)) == (path, key_id, query)


def test_vendor_attributes_with_x_prefix_parse_and_are_kept() -> None:
    parsed = parse("pkcs11:token=t;x-slot-hint=A_1?x-vendor-bbb=value-b&pin-source=/p")
    assert dict(parsed.path) == {"token": "t", "x-slot-hint": "A_1"}
    assert dict(parsed.query) == {"x-vendor-bbb": "value-b", "pin-source": "/p"}


def test_reserved_characters_the_rfc_leaves_unencoded_are_kept_as_they_are() -> None:
    parsed = parse("pkcs11:object=a:b@c!$'()*+,=&d?module-path=/a/b?c|d:e")
    assert parsed.path["object"] == "a:b@c!$'()*+,=&d"
    assert parsed.query["module-path"] == "/a/b?c|d:e"


def test_the_scheme_is_case_insensitive_as_every_uri_scheme() -> None:
    assert dict(parse("PKCS11:object=k").path) == {"object": "k"}


def test_an_id_is_bytes_and_may_be_any_bytes() -> None:
    assert parse("pkcs11:id=%00%ff%80").id == b"\x00\xff\x80"
    assert parse("pkcs11:id=").id == b""


# --- refused, each by name ----------------------------------------------------------------

HINT = (
    "write it as RFC 7512 does: pkcs11:token=LABEL;object=KEY?module-path=/path/to/module "
    "(percent-encode any other character, %20 for a space)"
)


def _refused(uri: str) -> Any:
    with pytest.raises(KeyReferenceError) as info:
        parse(uri)
    assert info.value.hint == HINT
    assert info.value.code == "key-reference"
    return info.value.message


def test_an_rfc_example_with_vendor_attributes_lacking_x_is_refused() -> None:
    uri = (
        "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a"
        "?pin-source=file:/etc/token_pin&vendor-bbb=value-b"
    )
    assert _refused(uri) == (
        f"bad pkcs11: URI {uri}: it has the path attribute 'vendor-aaa', which RFC 7512 "
        "does not define (vendor attributes start with x-)"
    )


def test_a_misspelt_attribute_is_refused_not_ignored() -> None:
    """Ignored, `objet=` would leave the key unnamed: any key of the token would do."""
    assert _refused("pkcs11:token=t;objet=release") == (
        "bad pkcs11: URI pkcs11:token=t;objet=release: it has the path attribute 'objet', "
        "which RFC 7512 does not define (vendor attributes start with x-)"
    )


def test_an_unknown_query_attribute_is_refused() -> None:
    assert _refused("pkcs11:object=k?pin=1234") == (
        "bad pkcs11: URI pkcs11:object=k?pin=***: it has the query attribute 'pin', "
        "which RFC 7512 does not define (vendor attributes start with x-)"
    )


def test_a_duplicate_path_attribute_is_refused() -> None:
    assert _refused("pkcs11:object=a;object=b") == (
        "bad pkcs11: URI pkcs11:object=a;object=b: the path attribute object is given twice"
    )


def test_a_duplicate_id_is_refused() -> None:
    assert _refused("pkcs11:id=%01;id=%02") == (
        "bad pkcs11: URI pkcs11:id=%01;id=%02: the path attribute id is given twice"
    )


def test_a_duplicate_query_attribute_is_refused() -> None:
    uri = "pkcs11:object=a?module-path=/a.so&module-path=/b.so"
    assert _refused(uri) == f"bad pkcs11: URI {uri}: the query attribute module-path is given twice"


def test_pin_value_with_pin_source_is_refused() -> None:
    uri = "pkcs11:object=a?pin-value=1234&pin-source=file:/etc/pin"
    assert _refused(uri) == (
        "bad pkcs11: URI pkcs11:object=a?pin-value=***&pin-source=file:/etc/pin: "
        "it has both pin-value and pin-source; give one"
    )


def test_module_path_with_module_name_is_refused() -> None:
    uri = "pkcs11:object=a?module-name=softhsm2&module-path=/usr/lib/x.so"
    assert (
        _refused(uri) == f"bad pkcs11: URI {uri}: it has both module-path and module-name; give one"
    )


@pytest.mark.parametrize("bad", ["%", "%2", "%zz", "a%2g", "%%41"])
def test_a_percent_sign_not_followed_by_two_hex_digits_is_refused(bad: str) -> None:
    assert _refused(f"pkcs11:object={bad}") == (
        f"bad pkcs11: URI pkcs11:object={bad}: the value of object has a '%' not followed by "
        "two hex digits"
    )


@pytest.mark.parametrize(
    ("uri", "char"),
    [
        ("pkcs11:object=my key", "' '"),
        ("pkcs11:object=a/b", "'/'"),
        ("pkcs11:object=a#frag", "'#'"),
        ("pkcs11:object=caf\u00e9", "'\u00e9'"),
        ('pkcs11:object="k"', "'\"'"),
        ("pkcs11:object=k?module-path=/a;b", "';'"),
        ("pkcs11:object=k?module-path=/a\\b", "'\\\\'"),
    ],
)
def test_a_character_that_must_be_percent_encoded_is_refused(uri: str, char: str) -> None:
    name = "module-path" if "?" in uri else "object"
    assert _refused(uri) == (
        f"bad pkcs11: URI {uri}: the value of {name} holds {char}, which must be percent-encoded"
    )


def test_a_value_that_is_not_utf8_once_decoded_is_refused() -> None:
    assert _refused("pkcs11:object=%ff%fe") == (
        "bad pkcs11: URI pkcs11:object=%ff%fe: the value of object is not UTF-8 once "
        "percent-decoded"
    )


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("pkcs11:token=a;;object=b", "path attribute 2 is empty (a doubled or trailing ';')"),
        ("pkcs11:token=a;", "path attribute 2 is empty (a doubled or trailing ';')"),
        ("pkcs11:object=a?module-name=m&", "query attribute 2 is empty (a doubled or "
                                           "trailing '&')"),
        ("pkcs11:object", "path attribute 1 is not of the form name=value"),
        ("pkcs11:=value", "path attribute 1 is not of the form name=value"),
    ],
)  # fmt: skip
def test_an_attribute_that_is_not_name_equals_value_is_refused(uri: str, problem: str) -> None:
    assert _refused(uri) == f"bad pkcs11: URI {uri}: {problem}"


def test_a_pin_value_without_equals_is_not_shown() -> None:
    """A mistyped pin-value is a PIN: the message counts the attribute, and shows nothing of it."""
    assert _refused("pkcs11:object=a?module-path=/m.so&pin-value1234") == (
        "bad pkcs11: URI pkcs11:object=a?module-path=/m.so&***: query attribute 2 "
        "is not of the form name=value"
    )


def test_a_character_of_a_vendor_pin_value_is_not_shown() -> None:
    assert _refused("pkcs11:object=a?x-pin-value=12 34") == (
        "bad pkcs11: URI pkcs11:object=a?x-pin-value=***: the value of x-pin-value holds a "
        "character, which must be percent-encoded"
    )


def test_a_character_of_a_pin_value_is_not_shown() -> None:
    message = _refused("pkcs11:object=a?pin-value=12 34")
    assert message == (
        "bad pkcs11: URI pkcs11:object=a?pin-value=***: the value of pin-value holds a "
        "character, which must be percent-encoded"
    )


def test_an_attribute_name_in_upper_case_is_refused_with_its_lower_case_form() -> None:
    assert _refused("pkcs11:Object=k") == (
        "bad pkcs11: URI pkcs11:Object=k: the path attribute Object must be written in lower "
        "case (object)"
    )


def test_a_query_attribute_in_the_path_is_refused_with_where_it_goes() -> None:
    assert _refused("pkcs11:object=k;pin-value=1234") == (
        "bad pkcs11: URI pkcs11:object=k;pin-value=***: pin-value is not a path attribute; "
        "it goes after the '?'"
    )


def test_a_path_attribute_in_the_query_is_refused_with_where_it_goes() -> None:
    assert _refused("pkcs11:?object=k") == (
        "bad pkcs11: URI pkcs11:?object=k: object is not a query attribute; it goes before the '?'"
    )


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("pkcs11:type=secret", "type must be one of cert, data, private, public, secret-key"),
        ("pkcs11:type=Private", "type must be one of cert, data, private, public, secret-key"),
        ("pkcs11:library-version=1.2.3", "library-version must be MAJOR or MAJOR.MINOR, in digits"),
        ("pkcs11:library-version=", "library-version must be MAJOR or MAJOR.MINOR, in digits"),
        ("pkcs11:library-version=256", "library-version numbers are at most 255 (a CK_VERSION's "
                                       "bytes)"),
        ("pkcs11:library-version=2.0256", "library-version numbers are at most 255 (a "
                                          "CK_VERSION's bytes)"),
        ("pkcs11:slot-id=0x1", "slot-id must be a number"),
    ],
)  # fmt: skip
def test_a_value_outside_its_attributes_grammar_is_refused(uri: str, problem: str) -> None:
    assert _refused(uri) == f"bad pkcs11: URI {uri}: {problem}"


def test_a_library_version_of_thousands_of_digits_is_refused_by_name() -> None:
    """Past Python's int() limit (4300 digits) it crashed with a ValueError."""
    uri = "pkcs11:library-version=" + "9" * 5000
    assert _refused(uri) == (
        f"bad pkcs11: URI {uri}: library-version numbers are at most 255 (a CK_VERSION's bytes)"
    )
    assert parse("pkcs11:library-version=00000000000000000002.255").path["library-version"]


def test_a_nul_in_a_pin_source_is_refused_by_name() -> None:
    """open() refuses a NUL in a path with a ValueError ("embedded null byte"): a crash."""
    assert _refused("pkcs11:object=k?pin-source=/tmp/a%00b") == (
        "bad pkcs11: URI pkcs11:object=k?pin-source=/tmp/a%00b: the value of pin-source holds "
        "a NUL (%00) once percent-decoded"
    )


def test_another_scheme_is_refused() -> None:
    assert _refused("pkcs12:object=k") == (
        "bad pkcs11: URI pkcs12:object=k: it does not start with pkcs11:"
    )


# --- redact ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("pkcs11:object=k?pin-value=1234", "pkcs11:object=k?pin-value=***"),
        ("pkcs11:?pin-value=1?2&module-name=m", "pkcs11:?pin-value=***&module-name=m"),
        ("pkcs11:?module-name=m&PIN-VALUE=1;2", "pkcs11:?module-name=m&PIN-VALUE=***"),
        ("pkcs11:object=k;x-pin-value=1234", "pkcs11:object=k;x-pin-value=***"),
        ("pkcs11:object=k?pin_value=1234", "pkcs11:object=k?pin_value=***"),
        ("pkcs11:object=k?pin%2Dvalue=1234", "pkcs11:object=k?pin%2Dvalue=***"),
        ("pkcs11:object=k?pin%20value=1234", "pkcs11:object=k?pin%20value=***"),
        ("pkcs11:object=k?pin value=1234", "pkcs11:object=k?pin value=***"),
        ("pkcs11:object=k? pin-value =1234", "pkcs11:object=k? pin-value =***"),
        ("pkcs11:object=k?pin-value=12&34", "pkcs11:object=k?pin-value=***"),
        ("pkcs11:object=my-pin-value=1", "pkcs11:object=my-pin-value=1"),
        ("pkcs11:object=k?pin-source=file:/p", "pkcs11:object=k?pin-source=file:/p"),
    ],
)  # fmt: skip
def test_redact_hides_every_pin_value_and_nothing_else(uri: str, shown: str) -> None:
    assert redact(uri) == shown


# --- properties --------------------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
"""Any text a label, a path or a PIN holds: no lone surrogate (not UTF-8), no NUL (refused)."""


@settings(max_examples=300, deadline=None)
@given(
    token=_TEXT,
    obj=_TEXT,
    key_id=st.binary(max_size=20),
    module=_TEXT,
    pin=_TEXT.filter(bool),
)
def test_any_values_percent_encoded_parse_back_to_themselves(
    token: str, obj: str, key_id: bytes, module: str, pin: str
) -> None:
    uri = (
        f"pkcs11:token={quote(token, safe='')};object={quote(obj, safe='')};"
        f"id={quote(key_id, safe='')}?module-path={quote(module, safe='')}"
        f"&pin-value={quote(pin, safe='')}"
    )
    parsed = parse(uri)
    assert (parsed.path["token"], parsed.path["object"], parsed.id) == (token, obj, key_id)
    assert (parsed.query["module-path"], parsed.query["pin-value"]) == (module, pin)
    assert redact(uri).endswith("&pin-value=***")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("pkcs11:;?&=%/#xobjectidtypemodulepathpinvalue-0aF"),
               max_size=60))  # fmt: skip
def test_any_text_parses_or_is_refused_as_a_key_reference(text: str) -> None:
    refused = None
    try:
        parse("pkcs11:" + text)
    except KeyReferenceError as e:  # anything else (an IndexError, a ValueError) fails
        refused = e.message
    assert refused is None or refused.startswith("bad pkcs11: URI ")
