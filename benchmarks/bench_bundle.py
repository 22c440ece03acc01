"""Benchmark `aoe-pack build` / `verify` against `openssl dgst -sha256` on the same files.

Run:  .venv/bin/python benchmarks/bench_bundle.py [--size-mib 1024] [--repeat 3] [--json]

Every figure is a ratio against a reference measured in the same run on the
same file, because these machines are shared and noisy. Each step runs after
`sync` (so writeback of the previous step does not land on the next one), as
the real CLI in a subprocess under `/usr/bin/time -v` (wall time includes
interpreter start-up; peak RSS comes from the kernel). Medians of --repeat runs.

aoe_pack is byte-compiled first (`compileall`), as a wheel install does: with
PYTHONDONTWRITEBYTECODE set, an editable install recompiles on every run.

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


def run(argv: list[str], *, fresh: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command, after a sync.

    ``fresh``: delete this output first (untimed). Replacing a 1 GiB file makes
    the kernel free the old one inside the timed rename (~0.15-0.2 s here):
    that is the old artifact's cost, measured apart as ``build_replace_s``.
    """
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


def median_run(argv: list[str], repeat: int, *, fresh: Path | None = None) -> tuple[float, float]:
    runs = [run(argv, fresh=fresh) for _ in range(repeat)]
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


CONFIG = {
    "version": "1.0.0",
    "tag": "bench_model",
    "runtime": "mnn",
    "source": "remote",
    "modelDir": ".",
    "modelName": "model.mnn",
}


def prepare(work: Path, size: int) -> None:
    """A random model of ``size`` bytes, a tiny one, their configs, and keys."""
    for name, model_size in (("model", size), ("small", 100_000)):
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        make_model(folder / "model.mnn", model_size)
        (folder / "config.json").write_text(json.dumps(CONFIG))
    for prefix, kind in (("signer", "ed25519"), ("device", "x25519")):
        subprocess.run(
            [AOE, "keygen", "--type", kind, "--out", str(work / prefix), "--force"],
            check=True,
            capture_output=True,
            env={**os.environ, "AOE_PACK_PASSWORD": ""},
            stdin=subprocess.DEVNULL,
        )


def measure(work: Path, rep: int) -> dict[str, float]:
    """Every figure, each the median of ``rep`` runs (5 for the small verify)."""
    sign = ["--sign-key", str(work / "signer.key")]
    trust = ["--trusted-key", str(work / "signer.pub")]
    cfg = str(work / "model" / "config.json")
    enc, plain, small = work / "enc.aoe", work / "plain.aoe", work / "small.aoe"
    build_enc = [
        AOE,
        "build",
        cfg,
        "--out",
        str(enc),
        *sign,
        "--recipient",
        str(work / "device.pub"),
    ]
    build_plain = [AOE, "build", cfg, "--out", str(plain), *sign, "--no-encrypt"]
    dgst = ["openssl", "dgst", "-sha256"]
    fig: dict[str, float] = {}
    fig["openssl_model_s"], _ = median_run([*dgst, str(work / "model" / "model.mnn")], rep)
    fig["build_enc_s"], fig["build_enc_rss_mib"] = median_run(build_enc, rep, fresh=enc)
    fig["build_plain_s"], fig["build_plain_rss_mib"] = median_run(build_plain, rep, fresh=plain)
    fig["build_replace_s"], _ = median_run([*build_plain, "--force"], rep)  # over the last
    fig["openssl_enc_bundle_s"], _ = median_run([*dgst, str(enc)], rep)
    fig["openssl_plain_bundle_s"], _ = median_run([*dgst, str(plain)], rep)
    verify = [AOE, "verify"]
    fig["verify_enc_s"], fig["verify_enc_rss_mib"] = median_run([*verify, str(enc), *trust], rep)
    fig["verify_decrypt_s"], fig["verify_decrypt_rss_mib"] = median_run(
        [*verify, str(enc), *trust, "--decryption-key", str(work / "device.key")], rep
    )
    fig["verify_plain_s"], fig["verify_plain_rss_mib"] = median_run(
        [*verify, str(plain), *trust], rep
    )
    small_cfg = str(work / "small" / "config.json")
    subprocess.run(
        [AOE, "build", small_cfg, "--out", str(small), *sign, "--no-encrypt"],
        check=True,
        capture_output=True,
    )
    fig["verify_small_s"], fig["verify_small_rss_mib"] = median_run(
        [*verify, str(small), *trust], max(5, rep)
    )
    return fig


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
    repo = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "compileall", "-q", "aoe_pack"], check=True, cwd=repo)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="aoe-bench-"))
    prepare(work, args.size_mib << 20)
    fig = measure(work, args.repeat)
    ratios = {
        "build_enc_vs_openssl": fig["build_enc_s"] / fig["openssl_model_s"],
        "build_plain_vs_openssl": fig["build_plain_s"] / fig["openssl_model_s"],
        "verify_enc_vs_openssl": fig["verify_enc_s"] / fig["openssl_enc_bundle_s"],
        "verify_decrypt_vs_openssl": fig["verify_decrypt_s"] / fig["openssl_enc_bundle_s"],
        "verify_plain_vs_openssl": fig["verify_plain_s"] / fig["openssl_plain_bundle_s"],
    }
    peak = max(v for k, v in fig.items() if k.endswith("_rss_mib"))
    verify_worst = max(ratios["verify_enc_vs_openssl"], ratios["verify_plain_vs_openssl"])
    build_worst = max(ratios["build_enc_vs_openssl"], ratios["build_plain_vs_openssl"])
    targets = {
        "verify <= 1.0x openssl": verify_worst <= 1.0,
        "build <= 1.5x openssl": build_worst <= 1.5,
        "peak memory <= 64 MiB": peak <= 64,
        "small verify < 0.3 s": fig["verify_small_s"] < 0.3,
    }
    if args.json:
        doc = {
            "size_mib": args.size_mib,
            "repeat": args.repeat,
            "figures": fig,
            "ratios": ratios,
            "targets": targets,
        }
        print(json.dumps(doc, indent=2))
    else:
        print(f"model {args.size_mib} MiB, median of {args.repeat} runs, {os.cpu_count()} cores")
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
