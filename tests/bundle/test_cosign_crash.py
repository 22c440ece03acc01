"""A co-signing killed at any step leaves the old or the new bundle; two at once both land.

A child process co-signs a bundle and is stopped at one step of the rewrite,
then killed (SIGKILL; TerminateProcess on Windows): nothing of it runs after.
What it left is the old bundle, the new one, or (killed in the middle of the
in-place write) a file no verifier accepts, with the journal that the next
run finishes. The
next run, with another key or the same command again, then leaves exactly
the bundle a build with all the keys makes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from _killed import blocked_child, sigkill
from _tamper import locate

from aoe_pack._crypto import asymmetric as keys
from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.bundle import EncryptionSpec, add_signatures, build_bundle, verify_bundle
from aoe_pack.bundle.format import SIGNATURES_ENTRY
from aoe_pack.config.model import ModelConfig
from aoe_pack.errors import BundleFormatError

# Co-signs argv[1] with the key file argv[2], stopping at step argv[3] (see STEPS).
_CHILD = """
import os, sys, time
from pathlib import Path
from aoe_pack.bundle import _tailjournal as journal, add_signatures, cosign
from aoe_pack.keys import load_signing_key

bundle, key, step = Path(sys.argv[1]), load_signing_key(sys.argv[2]), sys.argv[3]

def stop():
    print("ready", flush=True)
    if step == "hold":  # until the test says go
        while not Path(sys.argv[4]).exists():
            time.sleep(0.01)
        return
    time.sleep(600)

def stop_before(name):
    real = getattr(journal, name)
    def stopped(*args, **kwargs):
        stop()
        return real(*args, **kwargs)
    setattr(journal, name, stopped)

def stop_halfway(name, *, at_offset=None):
    real = getattr(journal, name)
    def half(fd, data, *offset):
        if at_offset is not None and offset != (at_offset,):
            return real(fd, data, *offset)  # another write than the one to cut short
        real(fd, data[: len(data) // 2], *offset)
        os.fsync(fd)
        stop()
    setattr(journal, name, half)

if step == "locked":
    stop_before("recover")
elif step == "hold":  # checked and signed, the lock held, nothing written yet
    stop_before("commit")
elif step == "queue":  # say when it is about to wait for the lock
    real_lock = cosign.lock_exclusive
    def announced(*args, **kwargs):
        print("locking", flush=True)
        return real_lock(*args, **kwargs)
    cosign.lock_exclusive = announced
elif step == "journal-torn":
    stop_halfway("_write_file")
elif step == "journal-written":
    stop_before("apply")
elif step == "tail-half-written":  # the journal is written at 0, the tail at argv[4]
    stop_halfway("pwrite", at_offset=int(sys.argv[4]))
elif step == "tail-written":
    stop_before("finish")
add_signatures(bundle, [key])
print("signed", flush=True)
"""

BEFORE_THE_JOURNAL = ["locked", "journal-torn"]
COMMITTED = ["journal-written", "tail-half-written", "tail-written"]
STEPS = BEFORE_THE_JOURNAL + COMMITTED


@pytest.fixture
def config(make_config: Any) -> ModelConfig:
    return make_config()


@pytest.fixture
def build(config: ModelConfig, tmp_path: Path) -> Any:
    """``build(keys, name)``: the bundle of ``config`` signed by ``keys`` in one go."""

    def make(signers: Sequence[PrivateKey], name: str) -> Path:
        out = tmp_path / name
        build_bundle(config, out, signing_keys=list(signers), encryption=EncryptionSpec())
        return out

    return make


def _keyfile(key: PrivateKey, path: Path) -> Path:
    path.write_bytes(keys.private_pem(key, None))
    return path


def _journals(bundle: Path) -> list[str]:
    return sorted(p.name for p in bundle.parent.glob(".*.cosign"))


def _killed_at(step: str, bundle: Path, key: Path) -> None:
    tail = locate(bundle.read_bytes())[SIGNATURES_ENTRY].local_header.start
    with blocked_child(_CHILD, str(bundle), str(key), step, str(tail)) as child:
        sigkill(child)


@pytest.mark.parametrize("step", STEPS)
def test_killed_cosigning_leaves_the_old_or_the_new_bundle(
    step: str, build: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    reviewer, third = (keys.generate(keys.KeyKind.ED25519) for _ in range(2))
    bundle = build([signer], "model.aoe")
    old = bundle.read_bytes()
    new = build([signer, reviewer], "both.aoe").read_bytes()
    _killed_at(step, bundle, _keyfile(reviewer, tmp_path / "reviewer.key"))

    left = bundle.read_bytes()
    if step in ("locked", "journal-torn", "journal-written"):
        assert left == old
    elif step == "tail-written":
        assert left == new
    else:  # in the middle of the in-place write: no verifier takes it for anything
        assert left not in (old, new)
        with pytest.raises(BundleFormatError) as info:
            verify_bundle(bundle, trusted_keys=[signer.public])
        assert info.value.hint == (
            "an interrupted `aoe-pack sign` left .model.aoe.cosign beside it: run that "
            "command again to finish it"
        )
    expected_journal = [] if step == "locked" else [".model.aoe.cosign"]
    assert _journals(bundle) == expected_journal

    # The next co-signer, with another key, finishes the journal first (or drops a torn one).
    result = add_signatures(bundle, [third])
    signers = [signer, third] + ([reviewer] if step in COMMITTED else [])
    assert bundle.read_bytes() == build(signers, "expected.aoe").read_bytes()
    assert result.added == (third.public.key_id,)
    assert _journals(bundle) == []
    if step == "journal-torn":
        assert result.notes == (
            f"removed the journal of an interrupted signing of {bundle}: it was cut short, "
            "before the bundle was changed",
        )
    elif step in COMMITTED:
        assert result.notes == (f"finished an interrupted signing of {bundle} first",)
    else:
        assert result.notes == ()


@pytest.mark.parametrize("step", COMMITTED)
def test_the_same_command_run_again_after_a_kill_finishes_it(
    step: str, build: Any, signer: PrivateKey, tmp_path: Path
) -> None:
    """Not "already signed": the signature is that of the run it finishes."""
    reviewer = keys.generate(keys.KeyKind.ED25519)
    bundle = build([signer], "model.aoe")
    _killed_at(step, bundle, _keyfile(reviewer, tmp_path / "reviewer.key"))
    result = add_signatures(bundle, [reviewer])
    assert result.added == (reviewer.public.key_id,)
    assert bundle.read_bytes() == build([signer, reviewer], "both.aoe").read_bytes()
    assert _journals(bundle) == []


def test_journal_of_a_bundle_rebuilt_since_is_dropped_and_the_bundle_kept(
    build: Any, signer: PrivateKey, signer2: PrivateKey, tmp_path: Path
) -> None:
    """The same manifest (a reproducible rebuild), other signatures: the journal no longer fits."""
    reviewer, third = (keys.generate(keys.KeyKind.ED25519) for _ in range(2))
    bundle = build([signer], "model.aoe")
    _killed_at("journal-written", bundle, _keyfile(reviewer, tmp_path / "reviewer.key"))
    build([signer, signer2], "model.aoe")  # renamed over it
    result = add_signatures(bundle, [third])
    assert bundle.read_bytes() == build([signer, signer2, third], "expected.aoe").read_bytes()
    assert result.notes == (
        f"removed the journal of an interrupted signing of {bundle}: the bundle has changed "
        "since, so it no longer applies",
    )


def test_two_cosigners_at_once_both_land(build: Any, signer: PrivateKey, tmp_path: Path) -> None:
    """The second waits for the first's lock, then signs what the first wrote.

    The first stops after its checks, about to write: without the lock the
    second would write in between, and the first would find its bundle
    changed (or, without that check, drop the second's signature).
    """
    first, second = (keys.generate(keys.KeyKind.ED25519) for _ in range(2))
    bundle = build([signer], "model.aoe")
    go = tmp_path / "go"
    args = [str(bundle), str(_keyfile(first, tmp_path / "first.key")), "hold", str(go)]
    with blocked_child(_CHILD, *args) as holder:
        second_key = _keyfile(second, tmp_path / "second.key")
        waiter = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(bundle), str(second_key), "queue"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert waiter.stdout is not None
            assert waiter.stdout.readline() == "locking\n"
            time.sleep(0.5)
            assert waiter.poll() is None  # still waiting for the lock
            go.touch()
            assert holder.wait(timeout=60) == 0, holder.communicate()
            out, err = waiter.communicate(timeout=60)
            assert (waiter.returncode, out) == (0, "signed\n"), err
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.communicate()
    assert bundle.read_bytes() == build([signer, first, second], "expected.aoe").read_bytes()
    assert _journals(bundle) == []
