"""A Worker serves jobs in one process; a crash or a hang fails only the job it was running."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aoe_pack._child import Worker

PROGRAMS = Path(__file__).resolve().parent / "fixtures" / "programs"


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Worker]:
    monkeypatch.setenv("PYTHONPATH", str(PROGRAMS))  # the child inherits it
    w = Worker("worker_program", log_dir=tmp_path)
    yield w
    w.close()


def test_jobs_share_one_process_and_stdout_stays_the_results(worker: Worker) -> None:
    first = worker.run({"x": 1}, timeout=30)
    second = worker.run({"x": 2}, timeout=30)
    assert first.result is not None
    assert second.result is not None
    assert (first.result["echo"], second.result["echo"]) == (1, 2)
    assert first.result["pid"] == second.result["pid"]


def test_a_crash_fails_its_job_and_the_next_job_gets_a_new_process(worker: Worker) -> None:
    before = worker.run({"x": 1}, timeout=30).result
    crashed = worker.run({"crash": True}, timeout=30)
    assert crashed.result is None
    # Windows has no signals: os.kill ends the process there with the number as its exit code.
    assert crashed.death == (
        "exited with exit code 11 without a result"
        if sys.platform == "win32"
        else "crashed with signal SIGSEGV (segmentation fault)"
    )
    assert "about to crash" in crashed.log_tail
    after = worker.run({"x": 3}, timeout=30).result
    assert after is not None
    assert before is not None
    assert after["echo"] == 3
    assert after["pid"] != before["pid"]


def test_a_hang_is_stopped_at_its_timeout(worker: Worker) -> None:
    hung = worker.run({"hang": True}, timeout=2)
    assert hung.timed_out
    assert hung.death == "did not finish in time and was stopped"
    assert worker.run({"x": 4}, timeout=30).result is not None
