"""``bench`` as on macOS and on Windows.

Linux hands each child its artifact as sealed memory files (``memfd_create``,
``F_ADD_SEALS``) through inherited descriptors. macOS has neither, and Windows
hands no descriptors to a child either: there an unencrypted bundle's
artifacts go to private read-only files for the time of the measurement, and
an encrypted bundle is refused. The child's peak memory
comes from /proc on Linux, from getrusage on macOS and from psutil on Windows;
the usable cores from sched_getaffinity on Linux only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import pytest

from aoe_pack._crypto.asymmetric import PrivateKey
from aoe_pack.bench import Status, bench_bundle
from aoe_pack.bench import _child as bench_child
from aoe_pack.bench.device import describe_device
from aoe_pack.bundle import EncryptionSpec, build_bundle
from aoe_pack.bundle.build import PayloadSource
from aoe_pack.config import validate_config
from aoe_pack.errors import UsageError
from aoe_pack.keys.load import DecryptionKey

MNIST = Path(__file__).resolve().parents[2] / "sample_models/mnist/config.json"


def _mnist(folder: Path, signer: PrivateKey, encryption: EncryptionSpec) -> Path:
    """The committed mnist.tflite as a tflite/fp32 artifact."""
    config = validate_config(MNIST).config
    assert config is not None
    out = folder / "mnist.aoe"
    model = PayloadSource(
        local=config.model_root / "mnist.tflite",
        path="tflite/fp32/mnist.tflite",
        role="model",
        runtime="tflite",
        variant="fp32",
    )
    build_bundle(config, out, signing_keys=[signer], encryption=encryption, payload=[model])
    return out


@pytest.fixture(scope="module")
def mnist_bundle(tmp_path_factory: pytest.TempPathFactory, signer: PrivateKey) -> Path:
    return _mnist(tmp_path_factory.mktemp("plain"), signer, EncryptionSpec())


def test_bench_without_memory_files_measures_from_private_files(
    simulated: str,
    mnist_bundle: Path,
    signer: PrivateKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    handed: list[tuple[dict[str, Any], Any]] = []
    real_run = subprocess.run

    def run(*args: Any, **kwargs: Any) -> Any:
        job = json.loads(kwargs["input"])
        handed.append((job, kwargs.get("pass_fds", ())))
        for f in job["files"]:  # read-only; on Windows, which has no owner bits, for all
            mode = Path(f["file"]).stat().st_mode & 0o777
            assert mode == (0o444 if sys.platform == "win32" else 0o400)
        return real_run(*args, **kwargs)

    monkeypatch.setattr("aoe_pack.bench._isolate.subprocess.run", run)
    report = bench_bundle(mnist_bundle, trusted_keys=[signer.public], runs=2, warmup=0)
    (result,) = report.artifacts
    assert result.status is Status.OK, result.error
    assert result.peak_mib is not None
    assert len(handed) == 1
    job, fds = handed[0]
    assert [sorted(f) for f in job["files"]] == [["file", "path", "role"]]
    assert fds == ()
    assert list(scratch.iterdir()) == []  # the plaintext is gone with its folder


def test_bench_without_memory_files_refuses_an_encrypted_bundle(
    simulated: str, signer: PrivateKey, x25519_key: PrivateKey, tmp_path: Path
) -> None:
    """Its plaintext would reach the disk, which bench promises it never does."""
    bundle = _mnist(tmp_path, signer, EncryptionSpec(recipients=[x25519_key.public]))
    key = DecryptionKey(origin="test key", private=x25519_key)
    with pytest.raises(UsageError, match=r"^the bundle is encrypted, and bench keeps decrypted"):
        bench_bundle(bundle, trusted_keys=[signer.public], decryption_key=key, runs=1)


def test_device_without_sched_getaffinity_counts_every_core(
    simulated: str,
) -> None:
    assert not hasattr(os, "sched_getaffinity")
    assert describe_device("box").usable_cores == (os.cpu_count() or 1)


def _fake_psutil(peak_wset: int) -> types.ModuleType:
    psutil = types.ModuleType("psutil")
    info = types.SimpleNamespace(peak_wset=peak_wset)
    psutil.Process = lambda: types.SimpleNamespace(memory_info=lambda: info)  # type: ignore[attr-defined]
    return psutil


def test_peak_memory_without_proc_or_getrusage_comes_from_psutil(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_child, "_STATUS", tmp_path / "no-proc-here")
    monkeypatch.setitem(sys.modules, "resource", None)
    monkeypatch.setitem(sys.modules, "psutil", _fake_psutil(256 << 20))
    assert bench_child._peak_mib() == 256
    monkeypatch.setitem(sys.modules, "psutil", None)
    assert bench_child._peak_mib() is None
