"""share_one_arena: glibc's mallopt where there is one, nothing elsewhere."""

from __future__ import annotations

import ctypes
import sys
from typing import Any

import pytest

from aoe_pack._io import arenas


class _Libc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


def test_asks_glibc_for_one_arena(monkeypatch: pytest.MonkeyPatch) -> None:
    libc = _Libc()
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", lambda _: libc)
    arenas.share_one_arena()
    assert libc.calls == [(-8, 1)]  # M_ARENA_MAX, 1


def test_a_libc_without_mallopt_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", lambda _: object())  # musl: no mallopt
    arenas.share_one_arena()


def test_other_systems_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(_: Any) -> None:
        raise AssertionError("no C library is loaded off Linux")

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(ctypes, "CDLL", fail)
    arenas.share_one_arena()


def test_the_real_call_is_harmless_here() -> None:
    arenas.share_one_arena()
    arenas.share_one_arena()
