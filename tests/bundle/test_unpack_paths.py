"""The unpacker's own path check (§9 step 1), with the ZIP layer's name rules out of the way.

§4.7 already refuses ``..``, absolute paths, empty and ``.`` segments and
backslashes when the container is read, so no real bundle ever reaches the
unpacker's second check and every other test passes with it broken. It is
there for the day the first layer has a bug; these tests switch that layer
off (the name check that the writer and the reader share) and require the
unpacker alone to refuse, with nothing written anywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _tamper import resign, take_apart

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.bundle import _zipwrite, unpack_bundle, verify_bundle
from aoe_pack.bundle.unpack import _safe_parts
from aoe_pack.errors import UnsafeEntryError

UNSAFE = {
    "dotdot-first": "../escape.txt",
    "dotdot-inside": "a/../../escape.txt",
    "dotdot-alone": "..",
    "absolute": "/tmp/escape.txt",
    "empty-segment": "a//escape.txt",
    "dot-segment": "./escape.txt",
    "trailing-slash": "escape/",
    "empty": "",
    "backslash": "..\\escape.txt",
}


# Windows drops the dots 'x..' ends with and reads 'C:model' as a stream of a file 'C':
# there the unpacker refuses them too (tests/platform/test_bundle_fallbacks.py).
NOT_ON_WINDOWS = pytest.mark.skipif(sys.platform == "win32", reason="another name on Windows")


@pytest.mark.parametrize("path", UNSAFE.values(), ids=UNSAFE.keys())
def test_unpack_path_check_refuses_on_its_own(path: str) -> None:
    with pytest.raises(UnsafeEntryError, match=r"^refusing to write unsafe path "):
        _safe_parts(path)


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("model.tflite", ["model.tflite"]),
        ("assets/a/b.bin", ["assets", "a", "b.bin"]),
        # dots inside a name are just a name
        pytest.param("..x/x..", ["..x", "x.."], marks=NOT_ON_WINDOWS),
        # a drive letter only matters at the start of an entry name
        pytest.param("C:model", ["C:model"], marks=NOT_ON_WINDOWS),
    ],
)
def test_unpack_path_check_keeps_safe_paths(path: str, parts: list[str]) -> None:
    assert _safe_parts(path) == parts


@pytest.fixture
def no_zip_name_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Disable §4.7's name rules in the writer and the reader (they share ``check_name``)."""
    monkeypatch.setattr(_zipwrite, "check_name", lambda name: name.encode())


def _signed_bundle_with_path(bundle: Path, signer: PrivateKey, path: str) -> Path:
    """``bundle`` with ``labels.txt`` renamed to ``path``, in the manifest and the ZIP alike."""
    parts = take_apart(bundle)
    manifest = parts.manifest()
    parts.file(manifest, "labels.txt")["path"] = path
    manifest["files"].sort(key=lambda f: f["path"])
    payloads = {
        ("payload/" + path if name == "payload/labels.txt" else name): body
        for name, body in parts.payloads.items()
    }
    bundle.write_bytes(resign(manifest, dict(sorted(payloads.items())), [signer]))
    return bundle


@pytest.mark.parametrize(
    "path", ["../escape.txt", "/tmp/aoe-escape.txt", "..\\escape.txt"], ids=str
)
def test_unpack_refuses_unsafe_path_that_got_past_the_zip_layer(
    built_bundle, signer: PrivateKey, tmp_path: Path, no_zip_name_rules: None, path: str
) -> None:
    bundle = _signed_bundle_with_path(built_bundle(), signer, path)
    # The first layer really is off: the bundle verifies, the bad path included.
    verified = verify_bundle(bundle, trusted_keys=[signer.public])
    assert path in [f.path for f in verified.manifest.files]
    out = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeEntryError, match=r"^refusing to write unsafe path "):
        unpack_bundle(bundle, out, trusted_keys=[signer.public])
    assert not (out.parent / "escape.txt").exists()
    assert not Path("/tmp/aoe-escape.txt").exists()
    assert not out.exists()  # the --out it created is removed, no partial file left
