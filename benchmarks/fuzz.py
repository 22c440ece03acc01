"""Coverage-guided fuzzing of every parser of untrusted bytes (atheris, libFuzzer).

Run:  .venv/bin/python benchmarks/fuzz.py --target all --runs 100000 --jobs 2

Each target (tests/fuzz/_targets.py) runs in a child process of its own:
``atheris.instrument_imports`` instruments aoe_pack (and the parsers it relies
on: semver, rfc8785, json-source-map) for coverage, the seeds are real objects
built at start plus tests/fuzz/corpus/<target>/, and libFuzzer runs
``-atheris_runs=N``.

The contract: any input gives a result or an ``AoePackError``. Every other
exception is a finding; the first input of each distinct finding (exception
type and the innermost aoe_pack frame) is written to
tests/fuzz/regressions/<target>/<sha256[:16]>, and fuzzing goes on. A child
that dies (libFuzzer timeout, out of memory, a crash in native code) leaves
libFuzzer's artifact, saved there as well.

Executions are counted in the Python callback itself: every call of the
target, the seed inputs included, and nothing else. ``-atheris_runs=N`` stops
after exactly N calls, so a finished target reports N. Seconds are the
child's fuzzing time (after the seeds are built and the modules imported).

Prints per target executions, seconds, executions/s and findings, and the
total; exits 1 when there is any finding (``--report`` writes them as JSON).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FUZZ_DIR = REPO / "tests" / "fuzz"
INSTRUMENTED = ["aoe_pack", "semver", "rfc8785", "json_source_map"]
STATS_EVERY = 2.0  # seconds between stats snapshots (a child may die mid-run)
TIMEOUT_S = 30  # per input; PBKDF2 at the 10,000,000-round cap takes a few seconds


def _targets_module() -> Any:
    sys.path.insert(0, str(FUZZ_DIR))
    import _targets  # type: ignore[import-not-found]

    return _targets


# --- the child: one target under atheris -----------------------------------------------------


def child(args: argparse.Namespace) -> None:
    import warnings

    import atheris

    with atheris.instrument_imports(include=INSTRUMENTED):
        t = _targets_module()
    warnings.simplefilter("error")  # as the test suite runs (pytest filterwarnings = error)
    target = t.TARGETS[args.child]
    regressions = Path(args.regressions) / target.name
    work = Path(args.workdir)

    stats: dict[str, Any] = {"target": target.name, "execs": 0, "seconds": 0.0, "findings": {}}
    found: dict[tuple[str, str, str], dict[str, Any]] = stats["findings"]  # type: ignore[assignment]
    stats_path = Path(args.stats)
    start = time.perf_counter()
    last = [start]

    def save() -> None:
        stats["seconds"] = time.perf_counter() - start
        out = {**stats, "findings": list(found.values())}
        tmp = stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1))
        tmp.replace(stats_path)

    def one_input(data: bytes) -> None:
        stats["execs"] += 1
        f = t.check(target.name, data)
        if f is not None:
            seen = found.get(f.signature)
            if seen is None:
                regressions.mkdir(parents=True, exist_ok=True)
                iid = t.input_id(data)
                (regressions / iid).write_bytes(data)
                found[f.signature] = {**f.__dict__, "id": iid, "count": 1}
                print(f"\nFINDING {target.name}/{iid}: {f.exception} at {f.where}", flush=True)
                save()
            else:
                seen["count"] += 1
        now = time.perf_counter()
        if now - last[0] > STATS_EVERY:
            last[0] = now
            save()

    atexit.register(save)
    argv = [
        sys.argv[0],
        f"-atheris_runs={args.runs}",
        f"-max_len={target.max_len}",
        f"-timeout={TIMEOUT_S}",
        "-rss_limit_mb=2048",
        f"-seed={args.seed}",
        f"-artifact_prefix={work}/",
        *_corpus_dirs(t, target, args),
    ]
    atheris.Setup(argv, one_input)
    start = time.perf_counter()
    last[0] = start
    atheris.Fuzz()


def _corpus_dirs(t: Any, target: Any, args: argparse.Namespace) -> list[str]:
    """libFuzzer's corpus folders: where new inputs go (first), the seeds, the committed corpus."""
    work = Path(args.workdir)
    seeds = work / "seeds"
    seeds.mkdir(parents=True, exist_ok=True)
    for data in target.seeds(t.world()):
        (seeds / t.input_id(data)).write_bytes(data)
    out = Path(args.corpus_out) / target.name if args.corpus_out else work / "corpus"
    out.mkdir(parents=True, exist_ok=True)
    committed = t.CORPUS_DIR / target.name
    return [str(out), str(seeds)] + ([str(committed)] if committed.is_dir() else [])


# --- the parent: children, in parallel, and the report ---------------------------------------


def run_target(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    work = tmp / name
    work.mkdir()
    stats = work / "stats.json"
    cmd = [
        sys.executable,
        __file__,
        "--child",
        name,
        "--runs",
        str(args.runs),
        "--seed",
        str(args.seed),
        "--stats",
        str(stats),
        "--workdir",
        str(work),
        "--regressions",
        str(args.regressions),
        *(["--corpus-out", str(args.corpus_out)] if args.corpus_out else []),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    with (work / "log.txt").open("wb") as log:
        rc = subprocess.run(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=False
        ).returncode
    result: dict[str, Any] = {"target": name, "execs": 0, "seconds": 0.0, "findings": []}
    if stats.is_file():
        result.update(json.loads(stats.read_text()))
    result["returncode"] = rc
    if rc != 0:  # libFuzzer stopped the child: keep its artifact as a regression input
        for artifact in sorted(work.glob("*-*")):
            if artifact.is_file() and artifact.name.split("-")[0] in {
                "crash",
                "timeout",
                "oom",
                "leak",
                "slow",
            }:
                data = artifact.read_bytes()
                iid = _targets_module().input_id(data)
                dest = Path(args.regressions) / name / iid
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
                result["findings"].append(
                    {
                        "target": name,
                        "exception": artifact.name.split("-")[0],
                        "where": "(child died)",
                        "origin": "",
                        "message": _tail(work / "log.txt"),
                        "id": iid,
                        "count": 1,
                    }
                )
        if not result["findings"]:
            result["findings"].append(
                {
                    "target": name,
                    "exception": f"exit {rc}",
                    "where": "(child died)",
                    "origin": "",
                    "message": _tail(work / "log.txt"),
                    "id": "",
                    "count": 1,
                }
            )
    print(_row(result), flush=True)
    return result


def _tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _row(r: dict[str, Any]) -> str:
    rate = r["execs"] / r["seconds"] if r["seconds"] else 0.0
    return (
        f"{r['target']:<16} {r['execs']:>10,} execs {r['seconds']:>8.1f} s "
        f"{rate:>9,.0f} execs/s  {len(r['findings'])} finding(s)"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", action="append", help="a target name, or all (repeatable)")
    p.add_argument("--runs", type=int, default=10_000, help="executions per target")
    p.add_argument("--jobs", type=int, default=2, help="targets fuzzed at once")
    p.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed")
    p.add_argument("--regressions", type=Path, default=FUZZ_DIR / "regressions")
    p.add_argument("--corpus-out", type=Path, help="keep each target's grown corpus here")
    p.add_argument("--report", type=Path, help="write every result as JSON here")
    p.add_argument("--list", action="store_true", help="list the targets and exit")
    # internal: one child per target
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--stats", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return 0
    names = list(_targets_module().TARGETS)
    if args.list:
        print("\n".join(names))
        return 0
    wanted = args.target or ["all"]
    chosen = names if "all" in wanted else wanted
    unknown = [n for n in chosen if n not in names]
    if unknown:
        p.error(f"unknown target(s) {unknown}; choose from {names}")
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="aoe-fuzz-run-"))
    try:
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            results = list(pool.map(lambda n: run_target(n, args, tmp), chosen))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wall = time.perf_counter() - t0
    total = sum(r["execs"] for r in results)
    findings = [f for r in results for f in r["findings"]]
    print("-" * 78)
    for r in results:
        print(_row(r))
    print(
        f"{'total':<16} {total:>10,} execs in {wall:.1f} s wall with {args.jobs} job(s): "
        f"{total / wall:,.0f} execs/s; {len(findings)} finding(s)"
    )
    for f in findings:
        print(
            f"FINDING {f['target']}/{f['id']}: {f['exception']} at {f['where']} "
            f"(from {f['origin']}; {f['count']} input(s)): {f['message'][:160]}"
        )
    if args.report:
        args.report.write_text(
            json.dumps(
                {
                    "wall_seconds": wall,
                    "jobs": args.jobs,
                    "runs": args.runs,
                    "total_execs": total,
                    "results": results,
                },
                indent=1,
            )
        )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
