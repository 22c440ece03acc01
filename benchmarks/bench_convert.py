"""Benchmark `aoe-pack build` with every target against the bare converter calls (issue 3 §6).

Run:  .venv/bin/python benchmarks/bench_convert.py [--model mnist|mobilenet|both] [--repeat 3]
          [--json] [--save FILE] [--workdir DIR] [--no-probe]

Both models (the default) take about 12 minutes on 2 cores; mnist alone about 2.

Targets: tflite fp32/fp16/int8, onnx basic, ort mobile, mnn fp32, ncnn fp32,
from a Keras source: ``sample_models/mnist/mnist.keras`` and/or a
``keras.applications.MobileNetV2(weights=None, alpha=0.35)`` at 128x128x3
(1000 classes, random weights, seeded), built locally into the work folder.

The reference ("bare") is ONE Python process, timed as a whole, imports and
interpreter start included, exactly as the build is: it makes the same
artifacts with the bare tools and nothing else, the way aoe-pack calls them:

  import tensorflow + keras; load the .keras once; export it once as a
  SavedModel (same input signature); tf.lite.TFLiteConverter.from_saved_model
  for fp32, fp16 (float16 weights) and int8 (full integer, float I/O,
  calibrated on the same 32 seeded samples aoe-pack draws); tf2onnx
  from_function at opset 17 on the loaded model; onnxruntime BASIC with
  optimized_model_filepath; the `convert_onnx_models_to_ort --optimization_style
  Fixed --target_platform arm` subprocess; MNN's `_tools.mnnconvert` in a child
  Python process (as aoe-pack runs it, without its import guard); the pnnx
  program with the same inputshape and fp16=0, on a copy of the ONNX model
  whose Pad nodes spell out their default mode (aoe-pack's fix, without which
  ncnn cannot load a ZeroPadding2D model such as MobileNetV2).

It does not validate, check the ONNX model, measure parity, hash, sign or
write a bundle: all of that is what the ratio charges to aoe-pack.

Measured: `aoe-pack build CONFIG --out X --sign-key K --no-encrypt`, and the
same with `--recipient` (encrypted), as CLI subprocesses. Every figure is the
median of --repeat runs; the bare run and both builds are interleaved run by
run (the machine is shared and drifts); each run follows `sync` and runs under
`/usr/bin/time -v` (peak RSS from the kernel). One untimed build and one bare
run warm the page cache first.

Breakdown of a build's wall time (B) and of its overhead B - bare:

  shared    = bare wall - the bare conversion steps: interpreter start, the
              TensorFlow import, interpreter exit. Taken to be the same in the build.
  packing   = an as-is build (no targets) of the same artifact files, minus
              Python's start-up: CLI imports, config validation, hashing,
              signing, (encrypting), writing.
  stage     = B - shared - packing: the conversion stage (source validation,
              conversions, runtime loads, parity), however it overlaps them.

  overhead  = packing + (stage - bare conversion steps)

The probe (skip it with --no-probe) splits ``stage - bare steps`` by running
aoe-pack's own source validation, runtime loads and parity
(``aoe_pack.convert`` internals) on the built artifacts, one after another in
one more process; what remains ("conversions, extra") is the conversions'
own extra cost (repeated Keras loads and exports, the ONNX check...) less
whatever running targets concurrently saves. Parity there runs the source
once on the 8 samples and compares every artifact with those outputs.

Per target, the provenance ``seconds`` (``aoe-pack inspect --json``) are
compared with the bare steps that make the same artifacts. aoe-pack times a
target around its converter only; the first ONNX-based target also pays for
tf2onnx; when targets run concurrently these include waiting for TensorFlow's
lock and sharing the cores, so they only add up in a sequential build.

aoe_pack is byte-compiled first (`compileall`), as a wheel install does.

Target (issue 3 §6): build with all targets <= 1.10x the bare converter calls.
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
from typing import Any

VENV_BIN = Path(sys.executable).parent
PYTHON = sys.executable
AOE = str(VENV_BIN / "aoe-pack")
TIME = "/usr/bin/time"
REPO = Path(__file__).resolve().parents[1]
AIM = 1.10

TARGETS = [
    {"runtime": "tflite", "variant": "fp32"},
    {"runtime": "tflite", "variant": "fp16"},
    {"runtime": "tflite", "variant": "int8"},
    {"runtime": "onnx", "variant": "basic"},
    {"runtime": "ort", "variant": "mobile"},
    {"runtime": "mnn", "variant": "fp32"},
    {"runtime": "ncnn", "variant": "fp32"},
]

# The bare steps that make up each runtime's artifacts, to set against the
# provenance seconds of aoe-pack's targets of that runtime.
BARE_GROUPS = {
    "tflite": ("keras_load", "export", "tflite_fp32", "tflite_fp16", "tflite_int8"),
    "onnx": ("tf2onnx", "onnx_basic"),
    "ort": ("ort_tool",),
    "mnn": ("mnn",),
    "ncnn": ("pnnx",),
}

# The reference: one process, the bare tools only. Its argument is a JSON spec;
# it writes the seconds of each step to spec["result"].
BARE = r"""
import json, os, shutil, subprocess, sys, time
from pathlib import Path

clock = time.perf_counter
mark = clock()
steps = {}

def lap(name):
    global mark
    now = clock()
    steps[name] = now - mark
    mark = now

spec = json.loads(Path(sys.argv[1]).read_text())
out = Path(spec["out"])
shutil.rmtree(out, ignore_errors=True)
out.mkdir(parents=True)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import numpy as np
import tensorflow as tf
import keras
lap("import_tf")

model = keras.saving.load_model(spec["model"])
lap("keras_load")

specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]
saved = out / "saved_model"
model.export(str(saved), format="tf_saved_model", verbose=False,
             input_signature=specs if len(specs) == 1 else [specs])
lap("export")

# The same 32 calibration samples as aoe-pack's sample_inputs(samples=32).
rng = np.random.default_rng(spec["seed"])
keys = [t.name for t in model.inputs]
calibration = []
for _ in range(spec["calibration_samples"]):
    feed = {}
    for key, (shape, (low, high)) in zip(keys, spec["inputs"]):
        feed[key] = rng.uniform(low, high, size=tuple(shape)).astype(np.float32)
    calibration.append(feed)

def representative():
    yield from calibration

for variant in ("fp32", "fp16", "int8"):
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    if variant != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
    (out / f"{variant}.tflite").write_bytes(converter.convert())
    lap("tflite_" + variant)

import tf2onnx

@tf.function(input_signature=specs)
def serve(*args):
    return model(args[0] if len(args) == 1 else list(args), training=False)

onnx_dir = out / "onnx"
onnx_dir.mkdir()
onnx_path = onnx_dir / "model.onnx"
tf2onnx.convert.from_function(serve, input_signature=specs, opset=17,
                              output_path=str(onnx_path))
lap("tf2onnx")

import onnxruntime as ort
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
options.optimized_model_filepath = str(out / "basic.onnx")
ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
lap("onnx_basic")

def child(argv, cwd):
    done = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors="replace", check=False)
    if done.returncode != 0:
        sys.exit(f"{argv[:3]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

child([sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort",
       "--optimization_style", "Fixed", "--target_platform", "arm",
       "--output_dir", str(out / "ort"), str(onnx_path)], out)
assert (out / "ort" / "model.ort").is_file()
lap("ort_tool")

child([sys.executable, "-c", "import sys, _tools; _tools.mnnconvert(sys.argv[1:])",
       "mnnconvert", "-f", "ONNX", "--modelFile", str(onnx_path),
       "--MNNModel", str(out / "model.mnn"), "--bizCode", "aoe"], out)
assert (out / "model.mnn").stat().st_size > 0
lap("mnn")

if spec["pnnx"]:
    import onnx

    staged = onnx.load(str(onnx_path))
    for node in staged.graph.node:
        if node.op_type == "Pad" and not any(a.name == "mode" for a in node.attribute):
            node.attribute.append(onnx.helper.make_attribute("mode", "constant"))
    ncnn_dir = out / "ncnn"
    ncnn_dir.mkdir()
    onnx.save(staged, str(ncnn_dir / "model.onnx"))
    child([spec["pnnx"], "model.onnx", "inputshape=" + spec["inputshape"], "fp16=0"], ncnn_dir)
    assert (ncnn_dir / "model.ncnn.param").is_file()
    lap("pnnx")

Path(spec["result"]).write_text(json.dumps(steps))
"""

# The probe: aoe-pack's own validation, runtime loads and parity, step by step,
# on the artifacts of a finished build (unpacked). Writes its figures to argv[2].
PROBE = r"""
import json, sys, time
from pathlib import Path

clock = time.perf_counter
spec = json.loads(Path(sys.argv[1]).read_text())
from aoe_pack.config import validate_config
from aoe_pack.convert.api import Artifact, ArtifactFile
from aoe_pack.convert.parity import measure, sample_inputs
from aoe_pack.convert.registry import converter_for, parse_target
from aoe_pack.convert.frameworks import import_tensorflow
from aoe_pack.convert.sources import load_source

fig = {}
start = clock()
import_tensorflow()
fig["import_tf"] = clock() - start
cfg = validate_config(Path(spec["config"])).config
start = clock()
source, reference = load_source(cfg.model_root / cfg.model_name, inputs=cfg.inputs,
                                outputs=cfg.outputs)
fig["validate_source"] = clock() - start
inputs = sample_inputs(source)
start = clock()
expected = {id(feed): reference(feed) for feed in inputs}
fig["reference"] = clock() - start
targets = {}
for conv in spec["conversions"]:
    target = parse_target({"runtime": conv["runtime"], "variant": conv["variant"]})
    converter = converter_for(target)
    files = tuple(
        ArtifactFile(local=Path(spec["unpacked"]) / p, bundle_path=p, role=spec["roles"][p])
        for p in conv["files"]
    )
    start = clock()
    runner = converter.load(Artifact(target=target, files=files))
    loaded = clock() - start
    start = clock()
    measure(lambda feed: expected[id(feed)], runner, inputs, tolerance=1.0)
    targets[target.name] = {"load": loaded, "parity": clock() - start}
fig["targets"] = targets
Path(sys.argv[2]).write_text(json.dumps(fig))
"""

MOBILENET = r"""
import json, os, sys
from pathlib import Path
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
folder = Path(sys.argv[1])
keras.utils.set_random_seed(20261127)
# A fixed batch of 1 and the name "image" (else keras_tensor_<n>), as tests/convert does.
image = keras.Input((128, 128, 3), batch_size=1, name="image")
model = keras.applications.MobileNetV2(input_tensor=image, alpha=0.35, weights=None)
model.save(str(folder / "mobilenet_v2.keras"))
"""


def run(argv: list[str], *, fresh: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command, after a sync."""
    if fresh is not None:
        fresh.unlink(missing_ok=True)
    subprocess.run(["sync"], check=True)
    t0 = time.perf_counter()
    p = subprocess.run([TIME, "-v", *argv], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(argv)}\n{p.stdout}\n{p.stderr}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    rss = int(m.group(1)) / 1024 if m else float("nan")
    return wall, rss


def quiet(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(argv)}\n{p.stdout}\n{p.stderr}")
    return p


def pnnx_program() -> str:
    import importlib.util

    spec = importlib.util.find_spec("pnnx")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the pnnx program is required (pip install --no-deps pnnx)")
    return str(Path(next(iter(spec.submodule_search_locations))) / "pnnx")


# --- models and configs ------------------------------------------------------------


def prepare_mnist(work: Path) -> Path:
    folder = work / "mnist"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(REPO / "sample_models" / "mnist", folder)
    (folder / "mnist.tflite").unlink(missing_ok=True)  # only the Keras source is converted
    config = json.loads((folder / "config.json").read_text())
    config |= {"modelName": "mnist.keras", "targets": TARGETS}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder / "config.json"


def prepare_mobilenet(work: Path) -> Path:
    folder = work / "mobilenet"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "mobilenet_v2.keras").is_file():
        quiet([PYTHON, "-c", MOBILENET, str(folder)])
    config = {
        "version": "1.0.0",
        "tag": "tag_mobilenet_v2",
        "runtime": "tflite",
        "modelDir": ".",
        "modelName": "mobilenet_v2.keras",
        # MobileNetV2 expects pixels scaled to [-1, 1] (its preprocess_input).
        "inputs": [
            {"name": "image", "dtype": "float32", "shape": [1, 128, 128, 3], "range": [-1, 1]}
        ],
        "outputs": [{"name": "predictions", "dtype": "float32", "shape": [1, 1000]}],
        "targets": TARGETS,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder / "config.json"


def bare_spec(config_path: Path, work: Path) -> Path:
    """The bare run's JSON spec: what aoe-pack would read from the config."""
    config = json.loads(config_path.read_text())
    inputs = [(i["shape"], i.get("range", [0.0, 1.0])) for i in config["inputs"]]
    shapes = ",".join("[" + ",".join(str(max(d, 1)) for d in s) + "]f32" for s, _ in inputs)
    spec = {
        "model": str(config_path.parent / config["modelName"]),
        "out": str(work / "bare-out"),
        "result": str(work / "bare-steps.json"),
        "inputs": inputs,
        "seed": 20261127,  # aoe_pack.convert.parity.DEFAULT_SEED
        "calibration_samples": 32,  # aoe_pack.convert.context.CALIBRATION_SAMPLES
        "inputshape": shapes,
        "pnnx": pnnx_program() if any(t["runtime"] == "ncnn" for t in config["targets"]) else "",
    }
    path = work / "bare-spec.json"
    path.write_text(json.dumps(spec, indent=2))
    (work / "bare.py").write_text(BARE)
    return path


def keys(work: Path) -> None:
    for prefix, kind in (("signer", "ed25519"), ("device", "x25519")):
        if not (work / f"{prefix}.key").is_file():
            quiet(
                [AOE, "keygen", "--type", kind, "--out", str(work / prefix), "--force"],
                env={**os.environ, "AOE_PACK_PASSWORD": ""},
                stdin=subprocess.DEVNULL,
            )


def as_is_config(work: Path, bundle: Path, inspected: dict[str, Any], trusted: Path) -> Path:
    """A config packing the built bundle's files as they are (no targets).

    The bundle is unpacked into ``work/unpacked`` (which the probe reads) and
    copied into ``work/as-is`` beside that config.
    """
    unpacked, folder = work / "unpacked", work / "as-is"
    for old in (unpacked, folder):
        shutil.rmtree(old, ignore_errors=True)
    quiet([AOE, "unpack", str(bundle), "--out", str(unpacked), "--trusted-key", str(trusted)])
    shutil.copytree(unpacked, folder)
    files = inspected["files"]
    model = next(f for f in files if f["role"] == "model")
    # modelName is a bare file name: move that one file to the top (same bytes).
    top = Path(model["path"]).name
    (folder / model["path"]).replace(folder / top)
    config = {
        "version": "1.0.0",
        "tag": "tag_as_is",
        "runtime": model["runtime"],
        "source": "remote",
        "modelDir": ".",
        "modelName": top,
        "encrypt": False,
        "files": [
            {"path": f["path"], "role": "labels" if f["role"] == "labels" else "asset"}
            for f in files
            if f["path"] != model["path"]
        ],
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder / "config.json"


def probe(work: Path, config: Path, inspected: dict[str, Any]) -> dict[str, Any] | None:
    spec = {
        "config": str(config),
        "unpacked": str(work / "unpacked"),
        "conversions": inspected["provenance"]["conversions"],
        "roles": {f["path"]: f["role"] for f in inspected["files"]},
    }
    (work / "probe-spec.json").write_text(json.dumps(spec))
    (work / "probe.py").write_text(PROBE)
    result = work / "probe.json"
    p = subprocess.run(
        [PYTHON, str(work / "probe.py"), str(work / "probe-spec.json"), str(result)],
        capture_output=True,
        text=True,
        check=False,
    )
    if p.returncode != 0:  # the probe reads aoe-pack internals, which may move
        print(f"probe failed, skipping it:\n{p.stderr[-2000:]}", file=sys.stderr)
        return None
    fig: dict[str, Any] = json.loads(result.read_text())
    return fig


# --- measuring ---------------------------------------------------------------------


def measure_model(
    name: str, config: Path, root: Path, rep: int, *, do_probe: bool
) -> dict[str, Any]:
    """Every run of one model, interleaved; then the probe and the analysis."""
    work = root / name
    work.mkdir(parents=True, exist_ok=True)
    spec = bare_spec(config, work)
    sign = ["--sign-key", str(root / "signer.key")]
    plain, enc = work / "plain.aoe", work / "enc.aoe"
    build_plain = [AOE, "build", str(config), "--out", str(plain), *sign, "--no-encrypt"]
    build_enc = [AOE, "build", str(config), "--out", str(enc), *sign]
    build_enc += ["--recipient", str(root / "device.pub")]
    bare = [PYTHON, str(work / "bare.py"), str(spec)]

    # Warm-up (untimed): the page cache, and the bundle the breakdown reads.
    print(f"[{name}] warm-up build and bare run", file=sys.stderr)
    quiet(build_plain)
    quiet(bare)
    inspected = json.loads(quiet([AOE, "inspect", str(plain), "--json"]).stdout)
    as_is = as_is_config(work, plain, inspected, root / "signer.pub")
    as_is_plain = [AOE, "build", str(as_is), "--out", str(work / "as-is.aoe"), *sign]
    as_is_plain.append("--no-encrypt")
    as_is_enc = [AOE, "build", str(as_is), "--out", str(work / "as-is-enc.aoe"), *sign]
    as_is_enc += ["--recipient", str(root / "device.pub")]

    runs: dict[str, list[tuple[float, float]]] = {}
    steps: list[dict[str, float]] = []
    conversions: list[dict[str, float]] = []
    for i in range(rep):
        print(f"[{name}] run {i + 1}/{rep}", file=sys.stderr)
        runs.setdefault("bare", []).append(run(bare))
        steps.append(json.loads((work / "bare-steps.json").read_text()))
        runs.setdefault("build_plain", []).append(run(build_plain, fresh=plain))
        prov = json.loads(quiet([AOE, "inspect", str(plain), "--json"]).stdout)["provenance"]
        conversions.append({c["target"]: float(c["seconds"]) for c in prov["conversions"]})
        runs.setdefault("build_enc", []).append(run(build_enc, fresh=enc))
        runs.setdefault("as_is_plain", []).append(run(as_is_plain, fresh=work / "as-is.aoe"))
        runs.setdefault("as_is_enc", []).append(run(as_is_enc, fresh=work / "as-is-enc.aoe"))
        runs.setdefault("python_start", []).append(run([PYTHON, "-c", "pass"]))
    probed = probe(work, config, inspected) if do_probe else None
    result = analyse(runs, steps, conversions, probed)
    return {"model": name, "bundle_bytes": plain.stat().st_size, **result}


def analyse(
    runs: dict[str, list[tuple[float, float]]],
    steps: list[dict[str, float]],
    conversions: list[dict[str, float]],
    probed: dict[str, Any] | None,
) -> dict[str, Any]:
    """Medians, the breakdown of each build's time, and the verdict."""

    def med(key: str) -> float:
        return statistics.median(r[0] for r in runs[key])

    fig: dict[str, Any] = {
        k: {"s": med(k), "all_s": [r[0] for r in v], "peak_rss_mib": max(r[1] for r in v)}
        for k, v in runs.items()
    }
    bare_steps = {k: statistics.median(s[k] for s in steps) for k in steps[0]}
    target_s = {k: statistics.median(c[k] for c in conversions) for k in conversions[0]}
    bare_s = med("bare")
    bare_conv = sum(v for k, v in bare_steps.items() if k != "import_tf")
    shared = bare_s - bare_conv
    breakdown = {}
    for label in ("plain", "enc"):
        build_s = med(f"build_{label}")
        packing = med(f"as_is_{label}") - med("python_start")
        stage = build_s - shared - packing
        part: dict[str, float] = {
            "build_s": build_s,
            "ratio": build_s / bare_s,
            "overhead_s": build_s - bare_s,
            "shared_start_import_exit_s": shared,
            "packing_s": packing,
            "stage_s": stage,
            "bare_conversions_s": bare_conv,
            "stage_extra_s": stage - bare_conv,
        }
        if probed:
            part["validation_s"] = probed["validate_source"]
            part["loads_s"] = sum(t["load"] for t in probed["targets"].values())
            part["parity_s"] = probed["reference"] + sum(
                t["parity"] for t in probed["targets"].values()
            )
            part["conversions_extra_s"] = (
                part["stage_extra_s"] - part["validation_s"] - part["loads_s"] - part["parity_s"]
            )
        breakdown[label] = part
    by_runtime = {}
    for runtime, bare_keys in BARE_GROUPS.items():
        if not any(k.split("-")[0] == runtime for k in target_s):
            continue
        aoe_s = sum(v for k, v in target_s.items() if k.split("-")[0] == runtime)
        bare_group = sum(bare_steps[k] for k in bare_keys)
        by_runtime[runtime] = {"aoe_s": aoe_s, "bare_s": bare_group, "extra_s": aoe_s - bare_group}
    worst = max(b["ratio"] for b in breakdown.values())
    return {
        "targets": list(target_s),
        "runs": fig,
        "bare_steps_s": bare_steps,
        "target_seconds": target_s,
        "by_runtime": by_runtime,
        "breakdown": breakdown,
        "probe": probed,
        "worst_ratio": worst,
        "aim_met": worst <= AIM,
    }


# --- reporting ---------------------------------------------------------------------


def print_report(res: dict[str, Any], rep: int) -> None:
    r = res["runs"]
    bare = r["bare"]["s"]
    print(
        f"\n== {res['model']}: {len(res['targets'])} targets, median of {rep} runs, "
        f"{os.cpu_count()} cores, bundle {res['bundle_bytes'] / 1024:.0f} KiB =="
    )
    print(f"  {'':30s} {'wall s':>7s} {'ratio':>7s} {'extra s':>8s} {'peak MiB':>9s}  runs")
    for key, label in (
        ("bare", "bare converters, 1 process"),
        ("build_plain", "aoe-pack build --no-encrypt"),
        ("build_enc", "aoe-pack build --recipient"),
    ):
        s, rss = r[key]["s"], r[key]["peak_rss_mib"]
        runs = " ".join(f"{x:.2f}" for x in r[key]["all_s"])
        print(f"  {label:30s} {s:7.2f} {s / bare:6.3f}x {s - bare:+8.2f} {rss:9.0f}  {runs}")
    print("  bare steps, s: " + ", ".join(f"{k} {v:.2f}" for k, v in res["bare_steps_s"].items()))
    print("  aoe-pack targets (provenance), s: ")
    print("    " + ", ".join(f"{k} {v:.2f}" for k, v in res["target_seconds"].items()))
    total, stage = sum(res["target_seconds"].values()), res["breakdown"]["plain"]["stage_s"]
    if total > stage:
        print(
            f"    (their sum, {total:.2f} s, exceeds the whole conversion stage, {stage:.2f} s: "
            "targets overlapped, and these include waiting for TensorFlow's lock and the cores)"
        )
    print(f"  {'per runtime':30s} {'aoe s':>7s} {'bare s':>7s} {'extra s':>8s}")
    for runtime, v in res["by_runtime"].items():
        print(f"    {runtime:28s} {v['aoe_s']:7.2f} {v['bare_s']:7.2f} {v['extra_s']:+8.2f}")
    plain, enc = res["breakdown"]["plain"], res["breakdown"]["enc"]
    print(f"  {'where the build time goes, s':32s} {'plain':>7s} {'enc':>7s}")
    rows = [
        ("shared_start_import_exit_s", "start, TF import, exit (=bare)"),
        ("packing_s", "CLI + packing (as-is build)"),
        ("stage_s", "conversion stage (the rest)"),
        ("bare_conversions_s", "  of which bare conversions"),
        ("stage_extra_s", "  of which aoe-pack's extra"),
        ("validation_s", "    source validation (probe)"),
        ("loads_s", "    runtime loads (probe)"),
        ("parity_s", "    parity (probe)"),
        ("conversions_extra_s", "    conversions' extra (rest)"),
    ]
    for key, label in rows:
        if key in plain:
            print(f"    {label:30s} {plain[key]:7.2f} {enc[key]:7.2f}")
    print(
        f"    {'overhead (build - bare)':28s} {plain['overhead_s']:+7.2f} {enc['overhead_s']:+7.2f}"
    )
    p = res["probe"]
    if p:
        print(
            f"  probe: import TF {p['import_tf']:.2f} s, validate source "
            f"{p['validate_source']:.2f} s, source on 8 samples {p['reference']:.2f} s; "
            "per target load + parity, s:"
        )
        print(
            "    "
            + ", ".join(f"{k} {t['load']:.2f}+{t['parity']:.2f}" for k, t in p["targets"].items())
        )
    verdict = "met" if res["aim_met"] else "MISSED"
    print(f"  [{verdict}] build <= {AIM:.2f}x bare (worst {res['worst_ratio']:.3f}x)")


def tree() -> dict[str, Any]:
    """The commit measured, and aoe_pack files changed on top of it (others edit concurrently)."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(
        [*git, "status", "--short", "aoe_pack"], capture_output=True, text=True, check=False
    )
    return {"commit": head.stdout.strip(), "changed": dirty.stdout.split("\n")[:-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", choices=("mnist", "mobilenet", "both"), default="both")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, help="scratch folder, kept (default: a temp dir)")
    ap.add_argument("--no-probe", action="store_true", help="skip the in-process split")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--save", type=Path, metavar="FILE", help="also write the JSON to FILE")
    args = ap.parse_args()
    if not shutil.which(TIME):
        sys.exit(f"{TIME} is required for this benchmark")
    subprocess.run([PYTHON, "-m", "compileall", "-q", "aoe_pack"], check=True, cwd=REPO)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="aoe-bench-convert-"))
    root.mkdir(parents=True, exist_ok=True)
    keys(root)
    models = ["mnist", "mobilenet"] if args.model == "both" else [args.model]
    prepare = {"mnist": prepare_mnist, "mobilenet": prepare_mobilenet}
    results = []
    for name in models:
        config = prepare[name](root / "models")
        results.append(measure_model(name, config, root, args.repeat, do_probe=not args.no_probe))
    doc = {
        "repeat": args.repeat,
        "cores": os.cpu_count(),
        "aim": AIM,
        "tree": tree(),
        "models": results,
    }
    if args.save:
        args.save.write_text(json.dumps(doc, indent=2))
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        t = doc["tree"]
        print(
            f"aoe-pack at {t['commit'][:10]}"
            + (f", changed: {t['changed']}" if t["changed"] else "")
        )
        for res in results:
            print_report(res, args.repeat)
    if not args.workdir:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
