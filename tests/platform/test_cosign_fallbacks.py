"""Co-signing as on macOS and on Windows.

Windows has no ``os.pwrite`` (the tail is written with a seek under the lock
of :func:`aoe_pack._io.pread.pread`), no ``fcntl`` (the bundle is locked with
``msvcrt.locking``, on a byte past the end of any bundle, since a locked byte
cannot be read there), no ``O_NOFOLLOW`` and no directory descriptors (the
bundle and its journal are checked with ``lstat`` and ``samestat``).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import _simulated
import pytest
from _skips import needs_symlinks

from aoe_pack._crypto import asymmetric as keys
from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.bundle import _tailjournal, add_signatures, verify_bundle
from aoe_pack.errors import OutputError


def test_cosign_gives_the_bundle_of_a_build_with_both_keys(
    simulated: str, built_bundle: Any, signer: PrivateKey, signer2: PrivateKey
) -> None:
    bundle = built_bundle()
    expected = built_bundle(signers=[signer, signer2]).read_bytes()
    add_signatures(bundle, [signer2], trusted_keys=[signer.public])
    assert bundle.read_bytes() == expected
    verify_bundle(bundle, trusted_keys=[signer.public, signer2.public], threshold=2)


@_simulated.as_on_windows
def test_windows_locks_the_bundle_with_msvcrt_past_its_end(
    monkeypatch: pytest.MonkeyPatch, built_bundle: Any, signer2: PrivateKey
) -> None:
    bundle = built_bundle()
    msvcrt: Any = _simulated.windows(monkeypatch) or importlib.import_module("msvcrt")
    positions: list[int] = []
    real = msvcrt.locking

    def locking(fd: int, mode: int, nbytes: int) -> None:
        positions.append(os.lseek(fd, 0, os.SEEK_CUR))
        real(fd, mode, nbytes)

    monkeypatch.setattr(msvcrt, "locking", locking)
    add_signatures(bundle, [signer2])
    assert positions == [1 << 33]
    assert positions[0] > bundle.stat().st_size


def test_an_interrupted_cosigning_is_finished_by_the_next(
    simulated: str, built_bundle: Any, signer: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    reviewer, third = (keys.generate(keys.KeyKind.ED25519) for _ in range(2))
    bundle = built_bundle()
    expected = built_bundle(signers=[signer, reviewer, third]).read_bytes()

    def power_cut(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(_tailjournal, "finish", power_cut)
        with pytest.raises(KeyboardInterrupt):
            add_signatures(bundle, [reviewer])
    assert (bundle.parent / ".bundle0.aoe.cosign").is_file()
    add_signatures(bundle, [third])
    assert bundle.read_bytes() == expected
    assert not (bundle.parent / ".bundle0.aoe.cosign").exists()


@needs_symlinks
def test_a_link_is_refused_without_o_nofollow(
    simulated: str, built_bundle: Any, signer2: PrivateKey, tmp_path: Path
) -> None:
    bundle = built_bundle()
    before = bundle.read_bytes()
    (tmp_path / "link.aoe").symlink_to(bundle)
    with pytest.raises(OutputError, match=r"link\.aoe is a link"):
        add_signatures(tmp_path / "link.aoe", [signer2])
    assert bundle.read_bytes() == before
