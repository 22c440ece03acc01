"""The Unicode 14.0.0 table that entry names are checked against (format.md §4.7)."""

from __future__ import annotations

import unicodedata

import pytest

from aoe_pack.bundle._unicode14 import BOUNDS, UNICODE_VERSION, assigned
from aoe_pack.bundle._zipwrite import check_name
from aoe_pack.errors import UnsafeEntryError


def _assigned_here(cp: int) -> bool:
    return unicodedata.category(chr(cp)) not in ("Cn", "Cs")


def test_table_is_unicode_14_as_python_has_it() -> None:
    # Python 3.11 has Unicode 14.0.0: the table must be exactly its assigned
    # code points. A later Python only assigns more, never fewer.
    mismatched = [
        cp
        for cp in range(0x110000)
        if assigned(chr(cp)) != _assigned_here(cp)
        and (unicodedata.unidata_version == UNICODE_VERSION or assigned(chr(cp)))
    ]
    assert mismatched == []
    assert list(BOUNDS) == sorted(set(BOUNDS))


def test_writer_refuses_a_name_with_an_unassigned_character() -> None:
    with pytest.raises(UnsafeEntryError, match=r"U\+0378, which Unicode 14\.0\.0 does not assign"):
        check_name("payload/a\u0378.bin")


def test_names_of_assigned_characters_pass() -> None:
    for name in (
        "payload/ÉTÉ.bin",
        "payload/模型.tflite",
        "payload/\U0001f600.txt",
        "payload/\ue000",
    ):
        assert check_name(name) == name.encode()
