"""Repository addresses (docs/format.md §5.2.4): the rule, the comparison, and a second reading.

``aoe_pack.urls`` is what the config, the bundle reader and ``manifest publish``
apply; ``tests/_independent_verifier.py`` implements the same rule from the
document alone. Generated addresses must get the same verdict from both.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import _independent_verifier as iv
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aoe_pack.urls import MAX_URL_LENGTH, normalise, same_repository, url_problem


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://models.example.com/repo/", "https://models.example.com/repo"),
        ("HTTPS://Models.Example.COM/repo", "https://models.example.com/repo/"),
        ("https://models.example.com:443/repo", "https://models.example.com/repo"),
        ("https://models.example.com:0443/repo", "https://models.example.com/repo"),
        ("http://localhost:80/", "http://LOCALHOST"),
        ("https://[::1]:8443/r", "https://[::1]:8443/r/"),
    ],
)
def test_same_repository(a: str, b: str) -> None:
    assert same_repository(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://models.example.com/repo", "https://models.example.com/Repo"),
        ("https://models.example.com/repo", "https://models.example.com:8443/repo"),
        ("https://models.example.com/a%2Fb", "https://models.example.com/a/b"),
        ("https://models.example.com/repo", "https://models.example.com/repo/sub"),
        ("http://localhost/", "https://localhost/"),
    ],
)
def test_other_repository(a: str, b: str) -> None:
    assert not same_repository(a, b)


def test_normal_form() -> None:
    assert normalise("HTTPS://Models.Example.com:443/Repo/") == "https://models.example.com/Repo"
    assert normalise("https://x.example:08443") == "https://x.example:8443"


def test_the_longest_address_is_accepted_and_one_more_character_is_not() -> None:
    base = "https://x.example/"
    longest = base + "a" * (MAX_URL_LENGTH - len(base))
    assert url_problem(longest) is None
    assert url_problem(longest + "a") == (
        f"is {MAX_URL_LENGTH + 1} characters long; at most {MAX_URL_LENGTH} are allowed"
    )


SCHEMA_PATTERN = json.loads(
    (Path(__file__).resolve().parents[1] / "schemas" / "model-config.schema.json").read_text()
)["properties"]["updateURL"]["pattern"].strip("^$")
_PIECES = st.sampled_from(
    [
        "https://", "http://", "HTTPS://", "ftp://", "https:/", "localhost", "127.0.0.1",
        "[::1]", "[::1", "10.0.0.1", "models.example.com", "xn--mdels-jua.example", "-x.com",
        "a_b.com", "@", "user:pw@", ":", ":443", ":0", ":65536", ":8080", "/", "//", "/repo",
        "/.", "/..", "/a%2F", "/%zz", "/%4", "?q", "#f", " ", "\\", "\x00", "\n", "\u202e",
        "é", "~", ".", "",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=7).map("".join))
@example("https://models.example.com/repo/")
@example("http://127.0.0.1:8000/")
@example("https://user@models.example.com/")
def test_the_independent_reading_agrees(url: str) -> None:
    ok = url_problem(url) is None
    assert ok == iv._update_url_ok(url)
    # The schemas' pattern is looser (the code checks hosts, ports and segments) but
    # never stricter: a config the code accepts passes the schema.
    assert not ok or re.fullmatch(SCHEMA_PATTERN, url)


def test_the_schemas_say_the_same_length_and_the_same_pattern() -> None:
    root = Path(__file__).resolve().parents[1] / "schemas"
    config = json.loads((root / "model-config.schema.json").read_text())["properties"]
    common = json.loads((root / "cli" / "common.schema.json").read_text())
    identity = common["$defs"]["modelIdentity"]["properties"]
    assert config["updateURL"]["maxLength"] == identity["updateURL"]["maxLength"] == MAX_URL_LENGTH
    assert config["updateURL"]["pattern"] == identity["updateURL"]["pattern"]
