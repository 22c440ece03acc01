"""Measure binary-diff libraries on model updates that change the way real ones do.

Run:  .venv/bin/python benchmarks/bench_delta.py [--cache DIR] [--arch mobilenetv2]
      [--classes 10] [--input 96] [--json]

Models come from public Keras application architectures with ``weights=None``
(random init, nobody tuned them for this), generated once into ``--cache``:

* A: the base model.
* B: head-only fine-tune: A with only the classifier ``Dense`` moved by
  Gaussian noise (sigma 0.02, the size of its initial weights).
  (Training the head of a ``weights=None`` backbone instead is no test: its
  pooled features are nearly zero, so 20 Adam steps moved the kernel by at
  most 8e-10 and only the bias changed; that delta is 0.07 % of the bundle.)
* C: full retrain: every weight of A changed (a fresh random init of the same
  architecture).
* D: quantisation change: A converted to float16 instead of float32.

Each is packed with the project's own ``aoe-pack build`` (config targets
tflite:fp32 / tflite:fp16, encrypted to one X25519 recipient), then unpacked,
so the diffs run on exactly the payload files a bundle carries. Each candidate
library diffs A's payload to the other's; figures are the patch size as % of
the target's full bundle, and the time and peak memory of making and of
applying the patch, each in a process of its own under ``/usr/bin/time -v``
(the C libraries allocate outside Python), less the peak of the same process
that only imported the library and read the base.

Candidates (only those importable are measured):

* zstd-prefix: Python 3.14's compression.zstd (``backports.zstd``) with the base
  as a *prefix* and long-distance matching: exactly the zstd CLI's --patch-from;
* zstd-dict: python-zstandard with the base as a raw-content *dictionary*
  (python-zstandard cannot load a prefix; its long-distance matcher does not
  search a dictionary, so only the regular match finder sees the base);
* bsdiff4; detools (sequential, bsdiff algorithm, lzma).

The candidates that aoe-pack does not depend on are found on BENCH_EXTRA_PATH, e.g.
``pip install --target /tmp/deltacand zstandard bsdiff4 detools`` and
``BENCH_EXTRA_PATH=/tmp/deltacand``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def _aoe(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), SOURCE_DATE_EPOCH="1700000000")
    p = subprocess.run(
        [sys.executable, "-m", "aoe_pack", "-q", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if p.returncode != 0:
        sys.exit(f"aoe-pack {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}")


def make_models(cache: Path, arch: str, classes: int, size: int) -> dict[str, Path]:
    """Write A, B, C as .keras files into ``cache`` (once)."""
    out = {k: cache / f"{arch}-{classes}-{size}-{k}.keras" for k in ("A", "B", "C")}
    if all(p.exists() for p in out.values()):
        return out
    import keras
    import numpy as np

    ctor = {
        "mobilenetv2": keras.applications.MobileNetV2,
        "efficientnetb0": keras.applications.EfficientNetB0,
    }[arch]
    keras.utils.set_random_seed(1)
    a = ctor(input_shape=(size, size, 3), weights=None, classes=classes)
    a.save(out["A"])
    rng = np.random.default_rng(2)
    head = a.layers[-1]
    kernel, bias = head.get_weights()
    # a fine-tune moves the head's weights; the backbone is frozen
    head.set_weights(
        [
            (kernel + rng.normal(0, 0.02, kernel.shape)).astype(kernel.dtype),
            (bias + rng.normal(0, 0.02, bias.shape)).astype(bias.dtype),
        ]
    )
    a.save(out["B"])
    keras.utils.set_random_seed(3)
    ctor(input_shape=(size, size, 3), weights=None, classes=classes).save(out["C"])
    return out


def build(cache: Path, keras_file: Path, variant: str, keys: Path) -> tuple[Path, Path]:
    """``aoe-pack build`` the model for tflite:VARIANT; return (bundle, unpacked folder)."""
    name = f"{keras_file.stem}-{variant}"
    bundle = cache / f"{name}.aoe"
    folder = cache / name
    if bundle.exists() and folder.exists():
        return bundle, folder
    src = cache / f"{name}-src"
    src.mkdir(exist_ok=True)
    (src / "model.keras").write_bytes(keras_file.read_bytes())
    (src / "config.json").write_text(
        json.dumps(
            {
                "version": "1.0.0",
                "tag": "tag_delta_bench",
                "runtime": "tensorflow",
                "source": "remote",
                "modelDir": ".",
                "modelName": "model.keras",
                "encrypt": True,
                "targets": [{"runtime": "tflite", "variant": variant}],
            }
        )
    )
    _aoe(
        "build", str(src / "config.json"), "--out", str(bundle), "--force",
        "--sign-key", str(keys / "signer.key"), "--recipient", str(keys / "app.pub"),
    )  # fmt: skip
    _aoe(
        "unpack", str(bundle), "--out", str(folder), "--force",
        "--trusted-key", str(keys / "signer.pub"), "--decryption-key", str(keys / "app.key"),
    )  # fmt: skip
    return bundle, folder


def payload(folder: Path) -> bytes:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    big = max(files, key=lambda p: p.stat().st_size)
    return big.read_bytes()


MEASURE = r"""
import io, json, sys, time
lib, level, phase, old_p, new_p, patch_p = sys.argv[1:7]
level = int(level)
old = open(old_p, "rb").read()
if lib == "zstd-prefix":
    from backports import zstd
elif lib == "zstd-dict":
    import zstandard as z
elif lib == "bsdiff4":
    import bsdiff4
elif lib == "detools":
    import detools
if phase == "baseline":
    sys.exit(0)
t0 = time.perf_counter()
if phase == "make":
    new = open(new_p, "rb").read()
    t0 = time.perf_counter()
    wlog = max(10, (max(len(old), len(new)) * 2 - 1).bit_length())
    if lib == "zstd-prefix":
        p = zstd.CompressionParameter
        opts = {p.compression_level: level, p.window_log: wlog, p.enable_long_distance_matching: 1}
        prefix = zstd.ZstdDict(old, is_raw=True).as_prefix
        patch = zstd.ZstdCompressor(options=opts, zstd_dict=prefix).compress(new, mode=2)
    elif lib == "zstd-dict":
        d = z.ZstdCompressionDict(old, dict_type=z.DICT_TYPE_RAWCONTENT)
        params = z.ZstdCompressionParameters.from_level(level, window_log=wlog, enable_ldm=True)
        patch = z.ZstdCompressor(dict_data=d, compression_params=params).compress(new)
    elif lib == "bsdiff4":
        patch = bsdiff4.diff(old, new)
    else:
        fp = io.BytesIO()
        detools.create_patch(io.BytesIO(old), io.BytesIO(new), fp, compression="lzma")
        patch = fp.getvalue()
    open(patch_p, "wb").write(patch)
else:
    patch = open(patch_p, "rb").read()
    t0 = time.perf_counter()
    if lib == "zstd-prefix":
        prefix = zstd.ZstdDict(old, is_raw=True).as_prefix
        opts = {zstd.DecompressionParameter.window_log_max: 31}
        out = zstd.ZstdDecompressor(zstd_dict=prefix, options=opts).decompress(patch)
    elif lib == "zstd-dict":
        d = z.ZstdCompressionDict(old, dict_type=z.DICT_TYPE_RAWCONTENT)
        out = z.ZstdDecompressor(dict_data=d, max_window_size=1 << 31).decompress(patch)
    elif lib == "bsdiff4":
        out = bsdiff4.patch(old, patch)
    else:
        o = io.BytesIO()
        detools.apply_patch(io.BytesIO(old), io.BytesIO(patch), o)
        out = o.getvalue()
    assert out == open(new_p, "rb").read(), "patch does not reproduce the target"
print(json.dumps({"s": time.perf_counter() - t0}))
"""

CANDIDATES = [
    ("zstd-prefix", 3),
    ("zstd-prefix", 9),
    ("zstd-prefix", 19),
    ("zstd-dict", 9),
    ("zstd-dict", 19),
    ("bsdiff4", 0),
    ("detools", 0),
]


def _phase(
    lib: str, level: int, phase: str, old: Path, new: Path, patch: Path
) -> tuple[float, float] | None:
    """(seconds, peak RSS MiB of the whole process) of one phase, or None if ``lib`` is missing."""
    p = subprocess.run(
        [
            "/usr/bin/time",
            "-v",
            sys.executable,
            "-c",
            MEASURE,
            lib,
            str(level),
            phase,
            str(old),
            str(new),
            str(patch),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, PYTHONPATH=os.environ.get("BENCH_EXTRA_PATH", "")),
    )
    if p.returncode != 0:
        if "ModuleNotFoundError" in p.stderr:
            return None
        sys.exit(f"{lib} {phase} failed:\n{p.stderr}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    rss = int(m.group(1)) / 1024 if m else float("nan")
    return (json.loads(p.stdout)["s"] if p.stdout.strip() else 0.0), rss


def measure(lib: str, level: int, old: Path, new: Path) -> dict[str, float] | None:
    """Patch size; time and peak RSS above a process that imported ``lib`` and read the base."""
    patch = old.with_name("patch.bin")
    base = _phase(lib, level, "baseline", old, new, patch)
    if base is None:
        return None
    make = _phase(lib, level, "make", old, new, patch)
    apply = _phase(lib, level, "apply", old, new, patch)
    assert make is not None
    assert apply is not None
    return {
        "patch": patch.stat().st_size,
        "make_s": make[0],
        "apply_s": apply[0],
        "make_mib": make[1] - base[1],
        "apply_mib": apply[1] - base[1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "aoe-bench-delta")
    ap.add_argument("--arch", default="mobilenetv2", choices=["mobilenetv2", "efficientnetb0"])
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--input", type=int, default=96)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    keys = cache / "keys"
    if not (keys / "signer.key").exists():
        keys.mkdir(exist_ok=True)
        _aoe("keygen", "--out", str(keys / "signer"))
        _aoe("keygen", "--type", "x25519", "--out", str(keys / "app"))
    models = make_models(cache, args.arch, args.classes, args.input)
    base_bundle, base_dir = build(cache, models["A"], "fp32", keys)
    cases = {
        "head-only fine-tune": build(cache, models["B"], "fp32", keys),
        "full retrain": build(cache, models["C"], "fp32", keys),
        "quantisation fp32->fp16": build(cache, models["A"], "fp16", keys),
    }
    old = cache / "payload-A.bin"
    old.write_bytes(payload(base_dir))
    rows = []
    for case, (bundle, folder) in cases.items():
        new = cache / "payload-target.bin"
        new.write_bytes(payload(folder))
        full = bundle.stat().st_size
        for lib, level in CANDIDATES:
            r = measure(lib, level, old, new)
            if r is None:
                continue
            name = f"{lib}-{level}" if lib.startswith("zstd") else lib
            rows.append(
                {
                    "case": case,
                    "library": name,
                    "full_bundle": full,
                    "pct": 100 * r["patch"] / full,
                    **r,
                }
            )
    print(
        f"# {args.arch} classes={args.classes} input={args.input}; "
        f"base bundle {base_bundle.stat().st_size} B"
    )
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(
        f"{'case':26} {'library':14} {'patch B':>9} {'% full':>7} {'make s':>7} "
        f"{'make MiB':>8} {'apply s':>7} {'apply MiB':>9}"
    )
    for r in rows:
        print(
            f"{r['case']:26} {r['library']:14} {r['patch']:>9} {r['pct']:>6.1f}% "
            f"{r['make_s']:>7.2f} {r['make_mib']:>8.0f} {r['apply_s']:>7.2f} {r['apply_mib']:>9.0f}"
        )


if __name__ == "__main__":
    main()
