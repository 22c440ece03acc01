"""Benchmark aoe-pack on a real 1 GiB ONNX model against openssl and sigstore's model-signing.

Run:  .venv/bin/python benchmarks/bench_big_model.py [--side 16384] [--repeat 3] [--json]

The model is real, not a blob: one 16384x16384 float32 initializer feeding a
MatMul, with its graph input and output declared (1 GiB of weights). It is
written as protobuf fields around a streamed ``raw_data``, never held in
memory. Its config packs it as it is (no targets), so ``validate`` and
``build`` check it the way an as-is build does.

Each command runs as a user runs it, the real CLI in a subprocess under
``/usr/bin/time -v`` after a ``sync``: wall time includes interpreter start-up
and imports; peak memory is the child's maximum RSS from the kernel. Figures
are medians of --repeat runs, and every goal is a ratio against a reference
measured in the same run (openssl on the same file; model-signing on the
same model), because these machines are shared and noisy.

model-signing 1.1.1 lives in ``.venv-oracles`` (built by ``bash .ci/oracles``,
the versions of .ci/oracles.txt): this script reuses it, or builds it the same
way when it is missing. Its P-256 key pair is generated at run time.

Goals (issue 3): build <= 1.5x openssl and <= 1.0x model-signing sign;
validate <= 0.5 s; verify <= 0.7x openssl; peak memory <= 64 MiB for
validate, build and verify.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_bundle import TIME, run  # same timing and RSS rules as the bundle benchmark

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
AOE = str(VENV_BIN / "aoe-pack")
ORACLES = REPO / ".venv-oracles"


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def make_onnx(path: Path, side: int) -> None:
    """A MatMul of a [1, side] input by a [side, side] float32 initializer W.

    The small parts come from onnx's helpers; the initializer's ``raw_data``
    is streamed into the file 1 MiB at a time, behind its protobuf field key
    and length (ModelProto.graph = 7, GraphProto.initializer = 5,
    TensorProto.raw_data = 9), so no copy of the weights is ever in memory.
    """
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, side])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, side])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "big", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.producer_name = "bench_big_model"
    header = TensorProto(name="W", dims=[side, side], data_type=TensorProto.FLOAT)
    data_size = side * side * 4
    tensor_head = header.SerializeToString() + _key(9, 2) + _varint(data_size)
    tensor_size = len(tensor_head) + data_size
    init_head = _key(5, 2) + _varint(tensor_size)
    graph_bytes = model.graph.SerializeToString()
    graph_size = len(graph_bytes) + len(init_head) + tensor_size
    model.ClearField("graph")
    block = bytearray(os.urandom(1 << 20))
    with path.open("wb") as f:
        f.write(model.SerializeToString() + _key(7, 2) + _varint(graph_size))
        f.write(graph_bytes + init_head + tensor_head)
        left = data_size
        while left:
            n = min(left, len(block))
            f.write(memoryview(block)[:n])
            block[:8] = left.to_bytes(8, "little")  # every MiB differs: nothing deduplicates
            left -= n
    onnx.checker.check_model(str(path))  # by path: onnx's checker streams, it does not load


def prepare(work: Path, side: int) -> None:
    """The model in work/model/, its as-is config, aoe-pack keys and a P-256 pair."""
    folder = work / "model"
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.onnx"
    if not model.is_file() or model.stat().st_size < side * side * 4:
        make_onnx(model, side)
    config = {
        "version": "1.0.0",
        "tag": "big_matmul",
        "runtime": "onnx",
        "source": "remote",
        "modelDir": "model",
        "modelName": "model.onnx",
        "inputs": [{"name": "x", "dtype": "float32", "shape": [1, side]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": [1, side]}],
    }
    (work / "config.json").write_text(json.dumps(config, indent=2))
    for prefix, kind in (("signer", "ed25519"), ("device", "x25519")):
        subprocess.run(
            [AOE, "keygen", "--type", kind, "--out", str(work / prefix), "--force"],
            check=True,
            capture_output=True,
            env={**os.environ, "AOE_PACK_PASSWORD": ""},
            stdin=subprocess.DEVNULL,
        )
    ec = work / "ec.pem"
    subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(ec)],
        check=True,
    )
    pub = ["openssl", "ec", "-in", str(ec), "-pubout", "-out", str(work / "ec.pub")]
    subprocess.run(pub, check=True, capture_output=True)


def oracle() -> Path:
    """``model_signing`` from .venv-oracles, built with .ci/oracles when missing."""
    program = ORACLES / "bin" / "model_signing"
    if not program.is_file():
        subprocess.run(["bash", str(REPO / ".ci" / "oracles")], check=True)
    return program


def median(argv: list[str], rep: int, *, fresh: Path | None = None) -> tuple[float, float]:
    runs = [run(argv, fresh=fresh) for _ in range(rep)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def measure(work: Path, rep: int) -> dict[str, tuple[float, float]]:
    """Every command: (median seconds, peak RSS MiB)."""
    ms = str(oracle())
    model, cfg = work / "model" / "model.onnx", str(work / "config.json")
    sign = ["--sign-key", str(work / "signer.key")]
    plain, enc, sig = work / "plain.aoe", work / "enc.aoe", work / "model.sig"
    fig: dict[str, tuple[float, float]] = {}
    fig["openssl dgst -sha256"] = median(["openssl", "dgst", "-sha256", str(model)], rep)
    ms_key = ["--private_key", str(work / "ec.pem"), "--signature", str(sig)]
    fig["model_signing sign key"] = median([ms, "sign", "key", str(model.parent), *ms_key], rep)
    ms_pub = ["--signature", str(sig), "--public_key", str(work / "ec.pub")]
    fig["model_signing verify key"] = median([ms, "verify", "key", str(model.parent), *ms_pub], rep)
    fig["aoe-pack validate"] = median([AOE, "validate", cfg], rep)
    build = [AOE, "build", cfg, *sign]
    fig["aoe-pack build"] = median([*build, "--out", str(plain), "--no-encrypt"], rep, fresh=plain)
    recipient = ["--recipient", str(work / "device.pub")]
    fig["aoe-pack build (encrypted)"] = median(
        [*build, "--out", str(enc), *recipient], rep, fresh=enc
    )
    trust = ["--trusted-key", str(work / "signer.pub")]
    fig["aoe-pack verify"] = median([AOE, "verify", str(plain), *trust], rep)
    fig["aoe-pack verify (encrypted)"] = median([AOE, "verify", str(enc), *trust], rep)
    return fig


def goals(fig: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float, bool]]:
    """Each goal: (measured, limit, met)."""
    openssl, ms_sign = fig["openssl dgst -sha256"][0], fig["model_signing sign key"][0]
    build = max(fig["aoe-pack build"][0], fig["aoe-pack build (encrypted)"][0])
    verify = max(fig["aoe-pack verify"][0], fig["aoe-pack verify (encrypted)"][0])
    peak = max(v[1] for k, v in fig.items() if k.startswith("aoe-pack"))
    found = {
        "build / openssl": (build / openssl, 1.5),
        "build / model_signing sign": (build / ms_sign, 1.0),
        "validate seconds": (fig["aoe-pack validate"][0], 0.5),
        "verify / openssl": (verify / openssl, 0.7),
        "aoe-pack peak MiB": (peak, 64.0),
    }
    return {k: (v, limit, v <= limit) for k, (v, limit) in found.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--side", type=int, default=16384, help="W is side x side float32 (1 GiB)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, help="scratch folder, kept (default: a temp dir)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    for tool in ("openssl", TIME):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required for this benchmark")
    subprocess.run([sys.executable, "-m", "compileall", "-q", "aoe_pack"], check=True, cwd=REPO)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="aoe-big-"))
    try:
        prepare(work, args.side)
        fig = measure(work, args.repeat)
    finally:
        if not args.workdir:
            shutil.rmtree(work)
    openssl, ms_sign = fig["openssl dgst -sha256"][0], fig["model_signing sign key"][0]
    met = goals(fig)
    if args.json:
        doc = {
            "model_bytes": args.side * args.side * 4,
            "repeat": args.repeat,
            "seconds": {k: v[0] for k, v in fig.items()},
            "peak_rss_mib": {k: v[1] for k, v in fig.items()},
            "goals": {k: {"value": v, "limit": lim, "met": ok} for k, (v, lim, ok) in met.items()},
        }
        print(json.dumps(doc, indent=2))
        return
    size = args.side * args.side * 4 / 2**30
    print(f"{size:.2f} GiB ONNX model, median of {args.repeat} runs, {os.cpu_count()} cores")
    print(f"  {'command':28s} {'seconds':>8s} {'/openssl':>9s} {'/ms sign':>9s} {'peak MiB':>9s}")
    for k, (sec, rss) in fig.items():
        print(f"  {k:28s} {sec:8.3f} {sec / openssl:8.2f}x {sec / ms_sign:8.2f}x {rss:9.0f}")
    for k, (v, limit, ok) in met.items():
        print(f"  [{'met' if ok else 'MISSED'}] {k}: {v:.2f} (goal <= {limit:g})")


if __name__ == "__main__":
    main()
