"""benchmarks/bench_serve.py in its smoke mode: the load benchmark still runs end to end.

A second or two of each load (wrk and hey, Debian's packages, which .ci/test
installs) against the real ``aoe-pack serve`` on a tiny repository, the soak
in short slices, and the bad requests beside good traffic. Speed is never
asserted: a shared CI machine's figures say nothing. What is asserted is the
report's shape, that the traffic the benchmark calls good met no error, and
that every bad request got its 4xx with a JSON error. A missing wrk or hey
fails the test: a skip would leave the benchmark unrun.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_serve.py"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench-serve") / "report.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--json", str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[met]" in done.stdout or "[MISSED]" in done.stdout, done.stdout
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def _runs(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "decide wrk": report["decide"]["wrk"],
        "decide hey": report["decide"]["hey"],
        "healthz": report["reference"]["healthz"],
        "nginx": report["reference"]["nginx_static"],
        "under bad requests": report["bad_requests"]["good"],
    }


def test_every_load_reports_rate_and_percentiles(report: dict[str, Any]) -> None:
    for name, run in _runs(report).items():
        assert run["requests"] > 0, name
        assert run["rps"] > 0, name
        assert 0 < run["p50_ms"] <= run["p99_ms"], name


def test_the_good_traffic_met_no_error(report: dict[str, Any]) -> None:
    for name, run in _runs(report).items():
        assert run["error_total"] == 0, (name, run)
        assert run["non_2xx"] == 0, (name, run)
    assert report["soak"]["errors"] == 0


def test_every_decision_request_answered_once_before_the_load(report: dict[str, Any]) -> None:
    pre = report["decide_precheck"]
    assert sum(pre["actions"].values()) == pre["bodies"] > 0
    assert set(pre["actions"]) <= {"download", "keep", "revert-to-local"}


def test_each_bad_request_got_its_4xx_with_a_json_error(report: dict[str, Any]) -> None:
    bad = report["bad_requests"]["bad"]
    assert set(bad) == {
        "malformed JSON",
        "unknown tag",
        "huge body (Content-Length)",
        "huge body (chunked)",
        "slow client (headers, then stalls)",
        "headers never finished",
    }
    for kind, tally in bad.items():
        assert tally["sent"] > 0, kind
        assert tally["as_expected"] == tally["sent"], (kind, tally)
        assert tally["expect"].startswith("4"), kind


def test_the_soak_samples_the_servers_memory(report: dict[str, Any]) -> None:
    soak = report["soak"]
    assert len(soak["samples"]) >= 2
    assert all(s["rss_kib"] > 0 for s in soak["samples"])
    assert soak["rss_start_kib"] == soak["samples"][0]["rss_kib"]
    assert isinstance(soak["flat"], bool)


def test_the_goals_are_judged_not_asserted(report: dict[str, Any]) -> None:
    goals = report["goals"]
    assert len(goals) == 4
    assert all(isinstance(g["met"], bool) and g["figure"] for g in goals)
    assert report["upgradeModel"].keys() & {"wrk", "skipped"}
