"""The GitHub Actions workflow: three OSes, and Linux runs README's test command itself."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github/workflows/ci.yml"


@pytest.fixture(scope="module")
def jobs() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(workflow, dict)
    assert workflow["permissions"] == {"contents": "read"}
    return dict(workflow["jobs"])


def _runners(job: dict[str, Any]) -> list[str]:
    """The runner images a job runs on, its matrix expanded."""
    runs_on = job["runs-on"]
    if runs_on == "${{ matrix.os }}":
        return list(job["strategy"]["matrix"]["os"])
    return [runs_on]


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_the_suite_runs_on_linux_macos_and_windows(jobs: dict[str, Any]) -> None:
    runners = [r for job in jobs.values() for r in _runners(job)]
    assert sorted(r.split("-")[0] for r in runners) == ["macos", "ubuntu", "windows"]


def test_every_job_checks_out_sets_up_python_3_11_and_stops_at_90_minutes(
    jobs: dict[str, Any],
) -> None:
    for name, job in jobs.items():
        assert job["timeout-minutes"] == 90, name
        steps = job["steps"]
        assert steps[0] == {"uses": "actions/checkout@v4"}, name
        assert steps[1] == {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}}


def test_linux_runs_the_readmes_test_command(jobs: dict[str, Any]) -> None:
    """CI and README's `bash .ci/test` stay one command, not two lists of steps."""
    (linux,) = [job for job in jobs.values() if _runners(job) == ["ubuntu-latest"]]
    assert _runs(linux) == ["bash .ci/test"]
    assert "bash .ci/test" in (REPO / "README.md").read_text(encoding="utf-8")
    assert (REPO / ".ci/test").is_file()


def test_the_portable_jobs_install_extras_and_leave_out_paths_that_exist(
    jobs: dict[str, Any],
) -> None:
    """A renamed test file must not silently join the macOS and Windows runs."""
    (portable,) = [job for job in jobs.values() if "windows-latest" in _runners(job)]
    install, pytest_run = _runs(portable)
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    requested = install.split('".[', 1)[1].split("]", 1)[0].split(",")
    assert requested
    assert set(requested) <= set(extras)
    assert "-c .ci/constraints.txt" in install
    skips = [entry.get("skip", "") for entry in portable["strategy"]["matrix"].get("include", [])]
    args = shlex.split(pytest_run.replace("${{ matrix.skip }}", " ".join(skips)))
    assert args[:4] == ["python", "-m", "pytest", "tests"]
    left_out = [a.split("=", 1)[1] for a in args[4:] if a.startswith(("--ignore=", "--deselect="))]
    assert len(left_out) == len(args) - 4, "only --ignore and --deselect narrow the run"
    for path in left_out:
        file, _, test = path.partition("::")
        function = test.split("[", 1)[0]  # a test's name, without the parameters of one case
        assert (REPO / file).exists(), path
        assert not test or f"def {function}(" in (REPO / file).read_text(encoding="utf-8"), path
