"""Conversion coverage on models nobody here tuned for: the zoo of benchmarks/zoo.py.

Run:
    .venv/bin/python benchmarks/bench_coverage.py [--zoo DIR] [--slice smoke|full|exported]
        [--only NAME ...] [--jobs N] [--timeout S] [--report report.json]
    .venv/bin/python benchmarks/bench_coverage.py --from-report A.json [B.json ...]
        [--families FAMILY ...]

Every zoo entry is built as a user would build it, with the installed
``aoe-pack build CONFIG --skip-failed-targets --no-encrypt --json`` in a
process of its own, and its JSON document is read. Per target, a model is:

* ``ok``: converted and within tolerance (``inconclusive`` counts those whose
  source outputs barely vary over the samples, reported apart);
* ``parity``: converted, outside tolerance;
* ``refused``: a converter or the runtime refused it with a named error;
* ``crashed``: the runtime died (signal, abort, hang) in its child process.

``aoe-pack validate`` runs first: the refusals it already names (a
converter's rules on an ONNX source) are counted apart, and the last column
gives the share within tolerance of the (model, target) pairs validate
accepts: what a user who ran validate can expect of build.

A *tool failure* is what must never happen: aoe-pack itself ending in a
traceback, an "internal error", a signal, or a stdout that is not one JSON
document. It is counted against every target of that model.

A model whose *source* does not validate (the build stops before converting,
with a named error such as an unsupported op or a model Keras refuses to load)
is left out of the percentages, which are of models whose source validates,
and listed with its reason.

The table printed at the end is the one the issue's closing note reports;
``--report`` writes every build's outcome as JSON for a closer look.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo

REPO = Path(__file__).resolve().parents[1]
AOE = [sys.executable, "-m", "aoe_pack"]
STATUSES = ("ok", "parity-failed", "refused", "crashed")
GOALS = {"tflite": 0.95, "onnx": 0.95, "ort": 0.95, "mnn": 0.95, "ncnn": 0.80}
_TOOL_FAILURE_MARKS = ("Traceback (most recent call last)", "internal error in aoe-pack")


def validate_one(config: Path, timeout: float) -> set[str]:
    """The targets ``aoe-pack validate`` already refuses (their converter's rules)."""
    try:
        proc = subprocess.run(
            [*AOE, "validate", str(config), "--json"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        doc = json.loads(proc.stdout)
    except (subprocess.TimeoutExpired, ValueError):
        return set()
    return {t["target"] for t in doc.get("targets", []) if t.get("status") == "refused"}


def build_one(entry: dict[str, Any], zoo_dir: Path, key: Path, timeout: float) -> dict[str, Any]:
    """Build one zoo entry; what happened, per target and to the tool."""
    config = zoo_dir / entry["config"]
    at_validate = validate_one(config, timeout)
    with tempfile.TemporaryDirectory(prefix="coverage-") as tmp:
        out = Path(tmp) / "bundle.aoe"
        argv = [*AOE, "build", str(config), "--out", str(out), "--sign-key", str(key)]
        argv += ["--no-encrypt", "--skip-failed-targets", "--json"]
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=tmp
            )
        except subprocess.TimeoutExpired:
            return {**entry, "tool": f"aoe-pack did not finish within {timeout:.0f} s"}
        seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        **entry,
        "seconds": round(seconds, 1),
        "exit": proc.returncode,
        "refusedAtValidate": sorted(at_validate),
    }
    marks = [m for m in _TOOL_FAILURE_MARKS if m in proc.stderr]
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = None
    if marks or doc is None or proc.returncode not in (0, 1, 2):
        tail = " | ".join(proc.stderr.strip().splitlines()[-4:])
        what = marks[0] if marks else "stdout is not one JSON document"
        if proc.returncode < 0:
            what = f"aoe-pack died with signal {-proc.returncode}"
        result["tool"] = f"{what}: {tail}"
        return result
    targets = doc.get("targets")
    if not targets:  # stopped before converting: the source (or the config) was refused
        error = doc.get("error") or {}
        result["source"] = f"{error.get('code')}: {error.get('message', '')}"
        return result
    result["targets"] = {
        t["target"]: {
            "status": t["status"],
            "code": t.get("code"),
            "reason": ((t.get("reason") or "").splitlines() or [""])[0][:300],
            "conclusive": (t.get("parity") or {}).get("conclusive"),
            "relative": _worst_relative(t.get("parity") or {}),
        }
        for t in targets
        if not t.get("control")
    }
    return result


def _worst_relative(parity: dict[str, Any]) -> float | None:
    """The largest relative error over an outcome's outputs (None when not measured)."""
    values = [float(o["relative"]) for o in parity.get("outputs", []) if "relative" in o]
    return max(values) if values else None


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:5.1f}%" if d else "    -"


def _count(
    validated: Sequence[dict[str, Any]], target_names: Sequence[str], tool_failures: int
) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
    """Per target: how many of each outcome; and the failures' reasons, grouped."""
    counts: dict[str, Counter[str]] = {t: Counter() for t in target_names}
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for r in validated:
        for name in r.get("refusedAtValidate", []):
            if name in counts:
                counts[name]["at validate"] += 1
        for name in target_names:
            t = r["targets"].get(name)
            if t is None:
                counts[name]["missing"] += 1
                continue
            counts[name][t["status"]] += 1
            if t["status"] == "ok" and t["conclusive"] is False:
                counts[name]["inconclusive"] += 1
            if t["status"] != "ok":
                reasons[name][f"{t['status']} {t['code']}: {_gist(t['reason'])}"] += 1
    for name in target_names:
        counts[name]["tool"] += tool_failures
    return counts, reasons


def summarise(results: Sequence[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The table per target, the goals per runtime, and the reasons behind each failure."""
    target_names = [f"{t['runtime']}-{t['variant']}" for t in zoo.TARGETS]
    tool_failures = [r for r in results if "tool" in r]
    source_refused = [r for r in results if "source" in r]
    validated = [r for r in results if "targets" in r]
    counts, reasons = _count(validated, target_names, len(tool_failures))
    lines = [
        f"models: {len(results)}; source validates: {len(validated)}; source refused with a "
        f"named error: {len(source_refused)}; aoe-pack failures (traceback, non-JSON, "
        f"signal): {len(tool_failures)}",
        "",
        "| target | models | within tolerance | % | of which inconclusive | parity failed "
        "| refused (named) | of which by validate | crashed (named) | tool failures "
        "| % of what validate accepts |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in target_names:
        c = counts[name]
        total = len(validated) + c["tool"]
        accepted = total - c["at validate"]
        lines.append(
            f"| {name} | {total} | {c['ok']} | {_pct(c['ok'], total)} | {c['inconclusive']} "
            f"| {c['parity-failed']} | {c['refused']} | {c['at validate']} | {c['crashed']} "
            f"| {c['tool']} | {_pct(c['ok'], accepted)} of {accepted} |"
        )
    lines += [
        "",
        "| runtime | goal | worst target, all models | worst target, what validate accepts |",
        "|---|---|---|---|",
    ]
    goals: dict[str, Any] = {}
    for runtime, goal in GOALS.items():
        names = [n for n in target_names if n.startswith(runtime + "-")]
        total = {n: len(validated) + counts[n]["tool"] for n in names}
        raw = {n: counts[n]["ok"] / max(1, total[n]) for n in names}
        kept = {n: counts[n]["ok"] / max(1, total[n] - counts[n]["at validate"]) for n in names}
        worst_raw = min(raw, key=raw.__getitem__)
        worst_kept = min(kept, key=kept.__getitem__)
        goals[runtime] = {
            "goal": goal,
            "worst": worst_raw,
            "rate": raw[worst_raw],
            "worstAfterValidate": worst_kept,
            "rateAfterValidate": kept[worst_kept],
        }
        lines.append(
            f"| {runtime} | {goal:.0%} | {worst_raw} {raw[worst_raw]:.1%} "
            f"({'met' if raw[worst_raw] >= goal else 'not met'}) | {worst_kept} "
            f"{kept[worst_kept]:.1%} ({'met' if kept[worst_kept] >= goal else 'not met'}) |"
        )
    lines += ["", *_family_table(validated, target_names)]
    if source_refused:
        lines += ["", "sources refused (left out of the percentages):"]
        why = Counter(_gist(r["source"]) for r in source_refused)
        lines += [f"  {n:3d}  {reason}" for reason, n in why.most_common()]
    if tool_failures:
        lines += ["", "aoe-pack failures:"]
        lines += [f"  {r['name']}: {r['tool'][:300]}" for r in tool_failures]
    lines += ["", "failure reasons per target (most frequent first):"]
    for name in target_names:
        for reason, n in reasons[name].most_common(8):
            lines.append(f"  {name:<18} {n:3d}  {reason}")
    return "\n".join(lines), {"counts": {k: dict(v) for k, v in counts.items()}, "goals": goals}


def _family_table(validated: Sequence[dict[str, Any]], target_names: Sequence[str]) -> list[str]:
    """Within tolerance per family and target, as ok/models."""
    families = sorted(
        {r["family"] for r in validated},
        key=lambda f: zoo.FAMILIES.index(f) if f in zoo.FAMILIES else len(zoo.FAMILIES),
    )
    lines = [
        "| family | models | " + " | ".join(target_names) + " |",
        "|---|---|" + "---|" * len(target_names),
    ]
    for family in families:
        rows = [r for r in validated if r["family"] == family]
        cells = [
            f"{sum(r['targets'].get(n, {}).get('status') == 'ok' for r in rows)}"
            for n in target_names
        ]
        lines.append(f"| {family} | {len(rows)} | " + " | ".join(cells) + " |")
    return lines


def _gist(reason: str) -> str:
    """A reason without its model-specific details, to group like failures."""
    import re

    text = re.sub(r"/\S+", "<path>", reason)
    text = re.sub(r"\b\d+(\.\d+)?(e-?\d+)?\b", "N", text)
    return text[:160]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", type=Path, default=Path(tempfile.gettempdir()) / "aoe-zoo")
    parser.add_argument("--slice", choices=zoo.SLICES, default="full")
    parser.add_argument("--only", nargs="*", default=())
    parser.add_argument("--jobs", type=int, default=1, help="builds run at once (default 1)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per model")
    parser.add_argument("--report", type=Path, help="write every build's outcome here (JSON)")
    parser.add_argument(
        "--from-report",
        type=Path,
        nargs="+",
        metavar="REPORT",
        help="build nothing: print the table of earlier --report files, merged (a model "
        "in a later file replaces the same model in an earlier one)",
    )
    parser.add_argument(
        "--families",
        nargs="+",
        choices=zoo.FAMILIES,
        help="with --from-report: only these families' models",
    )
    args = parser.parse_args(argv)
    if args.from_report:
        by_name: dict[str, dict[str, Any]] = {}
        for report in args.from_report:  # a model in a later report replaces the earlier
            for result in json.loads(report.read_text(encoding="utf-8"))["results"]:
                by_name[result["name"]] = result
        merged = [r for r in by_name.values() if not args.families or r["family"] in args.families]
        print(summarise(merged)[0])
        return 0

    entries = zoo.generate(args.zoo, slice=args.slice, only=args.only)
    keys = Path(tempfile.mkdtemp(prefix="coverage-keys-"))
    subprocess.run(
        [*AOE, "keygen", "--out", str(keys / "k")],
        check=True,
        capture_output=True,
        env={**os.environ, "AOE_PACK_PASSWORD": ""},
    )
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    done = iter(range(1, len(entries) + 1))

    def run(entry: dict[str, Any]) -> dict[str, Any]:
        result = build_one(entry, args.zoo, keys / "k.key", args.timeout)
        ok = sum(t["status"] == "ok" for t in result.get("targets", {}).values())
        state = result.get("tool") or result.get("source") or f"{ok}/{len(zoo.TARGETS)} ok"
        print(f"[{next(done)}/{len(entries)}] {entry['name']}: {state[:140]}", flush=True)
        return result

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for result in pool.map(run, entries):
            results.append(result)
    table, summary = summarise(results)
    print()
    print(table)
    print(f"\n{len(results)} models in {time.perf_counter() - started:.0f} s")
    if args.report:
        args.report.write_text(json.dumps({"summary": summary, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
