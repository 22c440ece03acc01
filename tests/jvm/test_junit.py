"""The JVM library's JUnit suite passes, and holds the tests it should."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests._jvm import JvmBuild


def _counts(build: JvmBuild) -> dict[str, int]:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for report in (build.out / "reports").glob("TEST-*.xml"):
        tree = ET.parse(report)  # noqa: S314 - our own JUnit's report, written in this run
        for suite in tree.getroot().iter("testsuite"):
            for key in totals:
                totals[key] += int(suite.get(key, "0"))
    return totals


def test_the_junit_suite_passes_with_no_test_skipped(jvm: JvmBuild) -> None:
    assert jvm.returncode == 0, jvm.log[-6000:]
    counts = _counts(jvm)
    assert counts["failures"] == counts["errors"] == counts["skipped"] == 0, counts
    assert counts["tests"] >= 30, counts
