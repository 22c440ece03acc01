"""The JVM library verifies, decrypts and unpacks a bundle far larger than its heap.

The promise of docs/android.md and the issue: bounded memory, streaming from a
File or an InputStream of known length. A JVM capped at 32 MiB of heap verifies
and unpacks an encrypted 96 MiB ONNX model (a MatMul by a 4,900 x 4,900 float
matrix of seeded random weights) built by ``aoe-pack build``; a reader that held
a file, or the whole payload, would die with OutOfMemoryError.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests._cli import NO_PASSWORD, Cli
from tests._jvm import JvmBuild

aoe = Cli(env=NO_PASSWORD)
SIDE = 4900  # 96 MB of weights
HEAP = "-Xmx32m"


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("big-bundle")
    for name, kind in [("signer", "p256"), ("device", "p256-kem")]:
        aoe("keygen", "--type", kind, "--out", root / name, json=True).expect()
    model = root / "src" / "m" / "model.onnx"
    model.parent.mkdir(parents=True)
    weights = np.random.default_rng(14).standard_normal((SIDE, SIDE), dtype=np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, SIDE])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, SIDE])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "big",
        [x],
        [y],
        initializer=[numpy_helper.from_array(weights, "W")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    config = {
        "version": "1.0.0",
        "tag": "big.model",
        "runtime": "onnx",
        "modelDir": "m",
        "modelName": "model.onnx",
    }
    (root / "src" / "config.json").write_text(json.dumps(config))
    aoe(
        "build",
        root / "src" / "config.json",
        "--out",
        root / "big.aoe",
        "--sign-key",
        root / "signer.key",
        "--recipient",
        root / "device.pub",
        json=True,
    ).expect()
    return root


def test_a_bundle_three_times_the_heap_is_verified_and_unpacked(
    jvm: JvmBuild, big: Path, tmp_path: Path
) -> None:
    assert jvm.returncode == 0, jvm.log[-3000:]
    model = big / "src" / "m" / "model.onnx"
    common = [
        "--trusted-key",
        str(big / "signer.pub"),
        "--threshold",
        "1",
        "--decryption-key",
        str(big / "device.key"),
    ]
    verified = jvm.run("verify", str(big / "big.aoe"), *common, java_options=[HEAP])
    assert verified.returncode == 0, verified.stderr.decode()[-3000:]
    assert json.loads(verified.stdout) == {"verified": True}
    out = tmp_path / "out"
    unpacked = jvm.run(
        "unpack", str(big / "big.aoe"), "--out", str(out), *common, java_options=[HEAP]
    )
    assert unpacked.returncode == 0, unpacked.stderr.decode()[-3000:]
    assert (out / "model.onnx").stat().st_size > SIDE * SIDE * 4
    assert (out / "model.onnx").read_bytes() == model.read_bytes()
