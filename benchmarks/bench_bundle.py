"""Benchmark `aoe-pack build` / `verify` against `openssl dgst -sha256` on the same files.

Run:  .venv/bin/python benchmarks/bench_bundle.py [--size-mib 1024] [--repeat 3] [--json]

Every figure is a ratio against a reference measured in the same run on the
same file, because these machines are shared and noisy. Each step runs after
`sync` (so writeback of the previous step does not land on the next one), as
the real CLI in a subprocess under `/usr/bin/time -v` (wall time includes
interpreter start-up; peak RSS comes from the kernel). Medians of --repeat runs.

Targets (issue 2): verify <= 1.0x openssl on the bundle, build <= 1.5x openssl
on the model, peak memory <= 64 MiB, small-bundle verify well under 0.3 s.
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

VENV_BIN = Path(sys.executable).parent
AOE = str(VENV_BIN / "aoe-pack")
TIME = "/usr/bin/time"


def run(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command, after a sync."""
    subprocess.run(["sync"], check=True)
    t0 = time.perf_counter()
    p = subprocess.run([TIME, "-v", *argv], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(argv)}\n{p.stdout}\n{p.stderr}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    rss = int(m.group(1)) / 1024 if m else float("nan")
    return wall, rss


def median_run(argv: list[str], repeat: int) -> tuple[float, float]:
    runs = [run(argv) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def make_model(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n] if n < len(block) else block)
            # vary the content so nothing can deduplicate it
            block = block[1:] + block[:1]
            left -= n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024, help="model size (default 1 GiB)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, help="scratch folder (default: a temp dir)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    for tool in ("openssl", TIME):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required for this benchmark")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="aoe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir = work / "model"
    model_dir.mkdir(exist_ok=True)
    model = model_dir / "model.mnn"
    make_model(model, args.size_mib << 20)
    (model_dir / "config.json").write_text(
        json.dumps(
            {
                "version": "1.0.0",
                "tag": "bench_model",
                "runtime": "mnn",
                "source": "remote",
                "modelDir": ".",
                "modelName": "model.mnn",
            }
        )
    )
    env_keys = {"AOE_PACK_PASSWORD": ""}
    for prefix, kind in (("signer", "ed25519"), ("device", "x25519")):
        subprocess.run(
            [AOE, "keygen", "--type", kind, "--out", str(work / prefix), "--force"],
            check=True,
            capture_output=True,
            env={**os.environ, **env_keys},
            stdin=subprocess.DEVNULL,
        )
    sign = ["--sign-key", str(work / "signer.key")]
    trust = ["--trusted-key", str(work / "signer.pub")]
    cfg = str(model_dir / "config.json")
    enc_bundle, plain_bundle = str(work / "enc.aoe"), str(work / "plain.aoe")
    rep = args.repeat
    fig: dict[str, float] = {}

    fig["openssl_model_s"], _ = median_run(["openssl", "dgst", "-sha256", str(model)], rep)
    fig["build_enc_s"], fig["build_enc_rss_mib"] = median_run(
        [AOE, "build", cfg, "--out", enc_bundle, *sign, "--recipient", str(work / "device.pub")],
        rep,
    )
    fig["build_plain_s"], fig["build_plain_rss_mib"] = median_run(
        [AOE, "build", cfg, "--out", plain_bundle, *sign, "--no-encrypt"], rep
    )
    fig["openssl_enc_bundle_s"], _ = median_run(["openssl", "dgst", "-sha256", enc_bundle], rep)
    fig["openssl_plain_bundle_s"], _ = median_run(["openssl", "dgst", "-sha256", plain_bundle], rep)
    fig["verify_enc_s"], fig["verify_enc_rss_mib"] = median_run(
        [AOE, "verify", enc_bundle, *trust], rep
    )
    fig["verify_decrypt_s"], fig["verify_decrypt_rss_mib"] = median_run(
        [AOE, "verify", enc_bundle, *trust, "--decryption-key", str(work / "device.key")], rep
    )
    fig["verify_plain_s"], fig["verify_plain_rss_mib"] = median_run(
        [AOE, "verify", plain_bundle, *trust], rep
    )

    small = work / "small"
    small.mkdir(exist_ok=True)
    (small / "model.mnn").write_bytes(os.urandom(100_000))
    (small / "config.json").write_text((model_dir / "config.json").read_text())
    small_bundle = str(work / "small.aoe")
    subprocess.run(
        [AOE, "build", str(small / "config.json"), "--out", small_bundle, *sign, "--no-encrypt"],
        check=True,
        capture_output=True,
    )
    fig["verify_small_s"], fig["verify_small_rss_mib"] = median_run(
        [AOE, "verify", small_bundle, *trust], max(5, rep)
    )

    ratios = {
        "build_enc_vs_openssl": fig["build_enc_s"] / fig["openssl_model_s"],
        "build_plain_vs_openssl": fig["build_plain_s"] / fig["openssl_model_s"],
        "verify_enc_vs_openssl": fig["verify_enc_s"] / fig["openssl_enc_bundle_s"],
        "verify_decrypt_vs_openssl": fig["verify_decrypt_s"] / fig["openssl_enc_bundle_s"],
        "verify_plain_vs_openssl": fig["verify_plain_s"] / fig["openssl_plain_bundle_s"],
    }
    peak = max(v for k, v in fig.items() if k.endswith("_rss_mib"))
    targets = {
        "verify <= 1.0x openssl": max(
            ratios["verify_enc_vs_openssl"], ratios["verify_plain_vs_openssl"]
        )
        <= 1.0,
        "build <= 1.5x openssl": max(
            ratios["build_enc_vs_openssl"], ratios["build_plain_vs_openssl"]
        )
        <= 1.5,
        "peak memory <= 64 MiB": peak <= 64,
        "small verify < 0.3 s": fig["verify_small_s"] < 0.3,
    }
    if args.json:
        print(
            json.dumps(
                {
                    "size_mib": args.size_mib,
                    "repeat": rep,
                    "figures": fig,
                    "ratios": ratios,
                    "targets": targets,
                },
                indent=2,
            )
        )
    else:
        print(f"model {args.size_mib} MiB, median of {rep} runs, {os.cpu_count()} cores")
        for k, v in fig.items():
            print(f"  {k:28s} {v:8.3f}")
        for k, v in ratios.items():
            print(f"  {k:28s} {v:8.2f}x")
        for k, ok in targets.items():
            print(f"  [{'met' if ok else 'MISSED'}] {k}")
    if not args.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
