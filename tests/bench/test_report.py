"""``bench report`` rendering: columns, sizes and clipped whiskers, from reports as JSON.

No runtime is needed: the reports are written here as a device would have
written them, so these tests run on every OS.
"""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from aoe_pack.bench import BenchReport, Comparison, write_comparison
from aoe_pack.bench._svg import Bar, bar_chart
from aoe_pack.bench.report import render_html, render_markdown


def _artifact(name: str, size: int | None, p50: float, p99: float) -> dict[str, Any]:
    runtime, _, variant = name.partition("-")
    art: dict[str, Any] = {
        "name": name,
        "runtime": runtime,
        "variant": variant,
        "files": [f"{runtime}/{variant}/model.{runtime}"],
        "status": "ok",
        "error": None,
        "loadMs": 3.5,
        "firstLoadMs": 120.0,
        "firstRunMs": 2.0,
        "latencyMs": {
            "p50": p50,
            "p90": p50 * 1.2,
            "p99": p99,
            "mean": p50,
            "min": p50,
            "max": p99,
        },
        "runs": 5,
        "samplesMs": [p50] * 5,
        "peakMiB": 80.0,
        "baselineMiB": 30.0,
        "runtimeVersions": {runtime: "1.0"},
    }
    if size is not None:
        art["size"] = size
    return art


def _report_doc(device: str, artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": "aoe-bench/v1",
        "created": "2026-11-30T10:00:00+00:00",
        "tool": "0.1.0",
        "device": {
            "name": device,
            "cpu": "Test CPU",
            "machine": "x86_64",
            "cores": 4,
            "usableCores": 2,
            "memoryMiB": 8192,
            "os": "Test OS 1",
            "kernel": "Linux 6.1",
            "python": "CPython 3.11.7",
            "runtimes": {"onnxruntime": "1.0"},
        },
        "bundle": {"tag": "tag_x", "version": "1.0.0", "sha256": "ab" * 32, "size": 1000},
        "settings": {"runs": 5, "warmup": 1, "seed": 1},
        "artifacts": artifacts,
        "notes": ["signatures were not checked"],
    }


def _comparison(*docs: dict[str, Any]) -> Comparison:
    return Comparison.of([BenchReport.from_dict(json.loads(json.dumps(d))) for d in docs])


@pytest.fixture
def comparison() -> Comparison:
    arts = [_artifact("onnx-basic", 4_928_307, 1.5, 2.0), _artifact("ncnn-fp32", 812, 0.8, 1.1)]
    return _comparison(_report_doc("box-a", arts), _report_doc("box-b", copy.deepcopy(arts)))


class _Tables(HTMLParser):
    """Each ``<table>`` of a page as its header cells and its rows of data cells."""

    def __init__(self) -> None:
        super().__init__()
        self.heads: list[list[str]] = []
        self.rows: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._row: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.heads.append([])
            self.rows.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "th" and self._cell is not None:
            self.heads[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row:
            self.rows[-1].append(self._row)


def _html_tables(page: str) -> _Tables:
    tables = _Tables()
    tables.feed(page)
    return tables


def _md_cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def _md_heads(text: str) -> list[list[str]]:
    """The header row of every markdown table: the line above a ``|---|`` line."""
    lines = text.splitlines()
    return [
        _md_cells(lines[i - 1]) for i, line in enumerate(lines) if re.fullmatch(r"\|(---\|)+", line)
    ]


def _md_rows(text: str, first_cell: str) -> list[list[str]]:
    return [_md_cells(line) for line in text.splitlines() if line.startswith(f"| {first_cell} |")]


def test_markdown_has_every_column_the_html_has(comparison: Comparison) -> None:
    html_heads = _html_tables(render_html(comparison)).heads
    md_heads = _md_heads(render_markdown(comparison))
    assert len(html_heads) == len(md_heads) == 2  # devices, results
    for html_head, md_head in zip(html_heads, md_heads, strict=True):
        assert md_head == html_head


def test_markdown_keeps_each_device_note(comparison: Comparison) -> None:
    text = render_markdown(comparison)
    assert "- box-a: signatures were not checked" in text
    assert "- box-b: signatures were not checked" in text


def test_artifact_size_is_a_column_in_html_and_markdown(comparison: Comparison) -> None:
    tables = _html_tables(render_html(comparison))
    head, rows = tables.heads[1], tables.rows[1]
    size = head.index("Size")
    assert {r[0]: r[size] for r in rows} == {"onnx-basic": "4.7 MiB", "ncnn-fp32": "812 B"}
    text = render_markdown(comparison)
    (md_head,) = [h for h in _md_heads(text) if "Artifact" in h]
    md_size = md_head.index("Size")
    assert [r[md_size] for r in _md_rows(text, "onnx-basic")] == ["4.7 MiB", "4.7 MiB"]
    assert [r[md_size] for r in _md_rows(text, "ncnn-fp32")] == ["812 B", "812 B"]


def test_a_report_that_does_not_record_the_size_still_reads(tmp_path: Path) -> None:
    """A report without ``size`` loads, says nothing false (a dash, not 0 B), and round-trips."""
    doc = _report_doc("box-a", [_artifact("onnx-basic", None, 1.5, 2.0)])
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    report = BenchReport.from_dict(doc)
    assert report.artifacts[0].size is None
    assert BenchReport.from_dict(report.to_dict()).to_dict() == report.to_dict()
    out = tmp_path / "report.md"
    write_comparison([path], out)
    text = out.read_text(encoding="utf-8")  # its bars are block characters
    (row,) = _md_rows(text, "onnx-basic")
    (head,) = [h for h in _md_heads(text) if "Artifact" in h]
    assert row[head.index("Size")] == "-"


def test_a_clipped_whisker_is_labelled_with_its_value() -> None:
    """One stalled run must not flatten the chart, nor hide how far p99 went."""
    svg = bar_chart(
        "Inference latency",
        "ms",
        ["box-a"],
        [
            Bar(group="fast", series=0, value=1.0, tick=1.1, whisker=1.3),
            Bar(group="stalled", series=0, value=1.2, tick=1.4, whisker=4321.0),
        ],
    )
    labels = re.findall(r"<text [^>]*>([^<]*)</text>", svg)
    # The clipped whisker: its bar's value, then its own; the other is not labelled so.
    assert [label for label in labels if "\u2192" in label] == ["1.2 \u2192 4321"]
    assert svg.count("<path ") == 1  # one arrowhead, on the clipped whisker


def test_the_html_report_labels_a_clipped_p99(tmp_path: Path) -> None:
    doc = _report_doc(
        "box-a",
        [_artifact("onnx-basic", 1000, 1.5, 1.9), _artifact("ncnn-fp32", 1000, 1.4, 2500.0)],
    )
    page = render_html(_comparison(doc))
    assert "1.4 \u2192 2500" in page
