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
are medians of --repeat rounds, each running every command in turn (a burst
of load from elsewhere then hits a whole round, not one command), with CPU
seconds beside the wall time; every goal is a ratio against a reference
measured in the same run (openssl on the same file; model-signing on the
same model), because these machines are shared and noisy.

model-signing 1.1.1 lives in ``.venv-oracles`` (built by ``bash .ci/oracles``,
the versions of .ci/oracles.txt): this script reuses it, or builds it the same
way when it is missing. Its P-256 key pair is generated at run time.

Goals: build <= 1.5x openssl and <= 1.0x model-signing sign;
validate <= 0.5 s; verify <= 0.7x openssl; peak memory <= 64 MiB for
validate, build and verify.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_bundle import TIME  # /usr/bin/time, as the bundle benchmark uses it

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


def warm(path: Path) -> None:
    """Read ``path`` untimed, so it is in the page cache.

    build drops the pages it wrote (aoe_pack._io.writebehind), so a verify
    right after it would read from disk while openssl reads a cached model:
    every timed command reads cached input, as a second run would.
    """
    with path.open("rb") as f:
        while f.read(8 << 20):
            pass


def run(
    argv: list[str], *, fresh: Path | None = None, cached: Path | None = None
) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one command.

    bench_bundle.run's rules (a sync first, ``fresh`` deleted untimed), plus
    the CPU time, which contention from other processes does not inflate;
    ``cached`` is read first (:func:`warm`).
    """
    if fresh is not None:
        fresh.unlink(missing_ok=True)
    subprocess.run(["sync"], check=True)
    if cached is not None:
        warm(cached)
    t0 = time.perf_counter()
    p = subprocess.run([TIME, "-v", *argv], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(argv)}\n{p.stdout}\n{p.stderr}")

    def field(name: str) -> float:
        m = re.search(rf"{name}: ([\d.]+)", p.stderr)
        return float(m.group(1)) if m else float("nan")

    cpu = field(r"User time \(seconds\)") + field(r"System time \(seconds\)")
    return wall, cpu, field(r"Maximum resident set size \(kbytes\)") / 1024


Figures = dict[str, tuple[float, float, float]]
"""Command -> (median wall seconds, median CPU seconds, peak RSS MiB)."""


def measure(work: Path, rep: int) -> Figures:
    """Every command, ``rep`` rounds of all of them in turn (so a burst of load
    from elsewhere hits every command of a round, not one command's runs)."""
    ms = str(oracle())
    model, cfg = work / "model" / "model.onnx", str(work / "config.json")
    sign = ["--sign-key", str(work / "signer.key")]
    plain, enc, sig = work / "plain.aoe", work / "enc.aoe", work / "model.sig"
    ms_key = ["--private_key", str(work / "ec.pem"), "--signature", str(sig)]
    ms_pub = ["--signature", str(sig), "--public_key", str(work / "ec.pub")]
    build = [AOE, "build", cfg, *sign]
    recipient = ["--recipient", str(work / "device.pub")]
    trust = ["--trusted-key", str(work / "signer.pub")]
    # (name, command, output deleted first, input read into the cache first)
    folder = str(model.parent)
    commands: list[tuple[str, list[str], Path | None, Path | None]] = [
        ("openssl dgst -sha256", ["openssl", "dgst", "-sha256", str(model)], None, model),
        ("model_signing sign key", [ms, "sign", "key", folder, *ms_key], None, model),
        (
            "model_signing verify key",
            [ms, "verify", "key", folder, *ms_pub],
            None,
            model,
        ),
        ("aoe-pack validate", [AOE, "validate", cfg], None, None),
        ("aoe-pack build", [*build, "--out", str(plain), "--no-encrypt"], plain, model),
        ("aoe-pack build (encrypted)", [*build, "--out", str(enc), *recipient], enc, model),
        ("aoe-pack verify", [AOE, "verify", str(plain), *trust], None, plain),
        ("aoe-pack verify (encrypted)", [AOE, "verify", str(enc), *trust], None, enc),
    ]
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name, *_ in commands}
    for _ in range(rep):
        for name, argv, fresh, cached in commands:
            runs[name].append(run(argv, fresh=fresh, cached=cached))
    return {
        name: (
            statistics.median(r[0] for r in got),
            statistics.median(r[1] for r in got),
            max(r[2] for r in got),
        )
        for name, got in runs.items()
    }


def goals(fig: Figures) -> dict[str, tuple[float, float, bool]]:
    """Each goal: (measured, limit, met)."""
    openssl, ms_sign = fig["openssl dgst -sha256"][0], fig["model_signing sign key"][0]
    build = max(fig["aoe-pack build"][0], fig["aoe-pack build (encrypted)"][0])
    verify = max(fig["aoe-pack verify"][0], fig["aoe-pack verify (encrypted)"][0])
    peak = max(v[2] for k, v in fig.items() if k.startswith("aoe-pack"))
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
            "cpu_seconds": {k: v[1] for k, v in fig.items()},
            "peak_rss_mib": {k: v[2] for k, v in fig.items()},
            "goals": {k: {"value": v, "limit": lim, "met": ok} for k, (v, lim, ok) in met.items()},
        }
        print(json.dumps(doc, indent=2))
        return
    size = args.side * args.side * 4 / 2**30
    print(f"{size:.2f} GiB ONNX model, median of {args.repeat} rounds, {os.cpu_count()} cores")
    head = ("command", "seconds", "/openssl", "/ms sign", "CPU s", "peak MiB")
    print("  {:28s} {:>8s} {:>9s} {:>9s} {:>7s} {:>9s}".format(*head))
    for k, (sec, cpu, rss) in fig.items():
        ratios = f"{sec / openssl:8.2f}x {sec / ms_sign:8.2f}x"
        print(f"  {k:28s} {sec:8.3f} {ratios} {cpu:7.2f} {rss:9.0f}")
    for k, (v, limit, ok) in met.items():
        print(f"  [{'met' if ok else 'MISSED'}] {k}: {v:.2f} (goal <= {limit:g})")


if __name__ == "__main__":
    main()
