"""Start-up of the ``aoe-pack`` command line: what a command costs before it does any work.

Run:  .venv/bin/python benchmarks/bench_startup.py [--runs 21] [--json]

For each command line below, two figures, both of the real CLI in a
subprocess (``python -m aoe_pack``, the interpreter of this script, its
environment inherited: set PYTHONPATH to measure a work tree):

* ``import_ms``: ``-X importtime``, the cumulative import time of
  ``aoe_pack.cli`` and, separately, of every module imported at top level
  after it (what the command imports when it runs), median of --runs;
* ``wall_ms``: the median wall time of --runs runs (after one warm-up).

aoe_pack is byte-compiled first (``compileall``), as a wheel install does:
with PYTHONDONTWRITEBYTECODE set, a source tree recompiles on every run.
Reference: ``python -c pass`` (the interpreter's own start-up, ``site``
included).

Commands are run with ``-v``: without it the CLI points descriptor 2 at a
log (cli/_streams.py), and ``-X importtime`` writes there. The fixtures
(keys, a small signed bundle, a small repository) are built with the
library in a temporary folder.

Goals (issue 12): ``verify`` and ``client check`` import neither the
publishing, conversion and key-generation code nor jsonschema; start-up is a
small share of verify's 0.7x openssl budget on 1 GiB.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aoe_pack


def fixtures(root: Path) -> dict[str, str]:
    from aoe_pack import api
    from aoe_pack.keys import keygen

    keygen("ed25519", root / "release")
    model = root / "model"
    model.mkdir()
    sample = Path(__file__).resolve().parents[1] / "sample_models" / "mnist" / "mnist.tflite"
    (model / "model.tflite").write_bytes(sample.read_bytes())
    (model / "config.json").write_text(
        json.dumps(
            {
                "version": "1.0.0",
                "tag": "tag_startup",
                "runtime": "tflite",
                "source": "remote",
                "modelDir": ".",
                "modelName": "model.tflite",
                "updateURL": "https://models.example.com/startup/",
                "encrypt": False,
            }
        ),
        encoding="utf-8",
    )
    bundle = api.build(
        configs=model / "config.json",
        out=root / "small.aoe",
        sign_keys=[root / "release.key"],
        encrypt=False,
    ).path
    repo = root / "repo"
    api.init_repository(
        repo=repo, root_keys=[root / "release.pub"], sign_keys=[root / "release.key"]
    )
    api.publish(repo=repo, bundles=[bundle], sign_keys=[root / "release.key"])
    return {
        "dir": str(root),
        "bundle": str(bundle),
        "key": str(root / "release.key"),
        "pub": str(root / "release.pub"),
        "repo": str(repo),
        "config": str(model / "config.json"),
    }


def commands(f: dict[str, str]) -> dict[str, list[str]]:
    return {
        "--version": ["--version"],
        "--help": ["--help"],
        "verify --help": ["verify", "--help"],
        "build --help": ["build", "--help"],
        "manifest publish --help": ["manifest", "publish", "--help"],
        "client check --help": ["client", "check", "--help"],
        "validate --help": ["validate", "--help"],
        "verify SMALL": ["verify", f["bundle"], "--trusted-key", f["pub"]],
        "validate SMALL": ["validate", f["config"]],
        "client check SMALL": [
            *("client", "check", "--repo", f["repo"], "--trusted-root", f"{f['repo']}/root.json"),
            *("--tag", "tag_startup", "--installed-version", "0.9.0", "--app-version", "1.0.0"),
            *("--device-id", "d1", "--state", f"{f['dir']}/state.json"),
        ],
    }


def import_ms(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Cumulative ms of aoe_pack.cli, and of the top-level imports the command made after it."""
    argv = [sys.executable, "-X", "importtime", "-m", "aoe_pack", "-v", *argv]
    p = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    cli = later = 0.0
    seen_cli = False
    for line in p.stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        if name.startswith("  "):
            continue  # nested: counted in its top-level parent
        if name.strip() == "aoe_pack.cli":
            cli, seen_cli = int(cumulative) / 1000, True
        elif seen_cli:
            later += int(cumulative) / 1000
    return cli, later


def wall_ms(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for i in range(runs + 1):
        t = time.perf_counter()
        subprocess.run(argv, capture_output=True, env=env, check=False)
        if i:  # the first is a warm-up
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    compileall.compile_dir(Path(aoe_pack.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="aoe-bench-startup-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "XDG_STATE_HOME": str(root / "xdg"), "AOE_PACK_PASSWORD": ""}
        f = fixtures(root)
        figures: dict[str, dict[str, float]] = {
            "python -c pass": {"wall_ms": wall_ms([sys.executable, "-c", "pass"], env, args.runs)}
        }
        for name, argv in commands(f).items():
            imports = [import_ms(argv, env) for _ in range(args.runs)]
            figures[name] = {
                "cli_import_ms": statistics.median(c for c, _ in imports),
                "command_import_ms": statistics.median(x for _, x in imports),
                "wall_ms": wall_ms([sys.executable, "-m", "aoe_pack", *argv], env, args.runs),
            }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{'command':<26}{'import aoe_pack.cli':>21}{'its own imports':>17}{'wall':>10}")
    for name, fig in figures.items():
        cli, own = fig.get("cli_import_ms"), fig.get("command_import_ms")
        print(
            f"{name:<26}{'' if cli is None else f'{cli:.1f} ms':>21}"
            f"{'' if own is None else f'{own:.1f} ms':>17}{fig['wall_ms']:>7.1f} ms"
        )


if __name__ == "__main__":
    main()
