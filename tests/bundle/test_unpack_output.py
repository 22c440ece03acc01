"""``unpack --out``: refused by name when it is not a folder; gone after a failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from _skips import needs_symlinks
from _tamper import resign, take_apart

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.bundle import unpack_bundle
from aoe_pack.errors import IntegrityError, OutputError


@needs_symlinks
def test_unpack_into_a_link_to_a_folder_is_refused_by_name(
    built_bundle, signer: PrivateKey, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    out = tmp_path / "out"
    out.symlink_to(target, target_is_directory=True)
    refused = r"[/\\]out is a symbolic link; symlinks are never followed$"  # any separator
    with pytest.raises(OutputError, match=refused):
        unpack_bundle(built_bundle(), out, trusted_keys=[signer.public])
    assert out.is_symlink()
    assert list(target.iterdir()) == []


def test_unpack_into_a_plain_file_is_refused_by_name(
    built_bundle, signer: PrivateKey, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.write_bytes(b"the user's file")
    with pytest.raises(OutputError, match=r"[/\\]out is a file, not a folder$"):
        unpack_bundle(built_bundle(), out, trusted_keys=[signer.public], force=True)
    assert out.read_bytes() == b"the user's file"


def test_failed_unpack_removes_the_out_folder_it_created(
    built_bundle, signer: PrivateKey, tmp_path: Path
) -> None:
    """An insider's wrong whole-file digest fails the unpack after the folders were made."""
    bundle = built_bundle()
    parts = take_apart(bundle)
    manifest = parts.manifest()
    parts.file(manifest, "model.tflite")["sha256"] = "0" * 64
    bundle.write_bytes(resign(manifest, parts.payloads, [signer]))
    out = tmp_path / "new" / "out"
    with pytest.raises(IntegrityError, match=r"model\.tflite: the model does not match"):
        unpack_bundle(bundle, out, trusted_keys=[signer.public])
    assert not (tmp_path / "new").exists()
