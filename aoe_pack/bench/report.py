"""Merge bench reports from several devices into one comparison (HTML or markdown).

The HTML page is self-contained: a devices table, a results table (each
artifact on each device: its size on disk, load, p50/p90/p99 latency, peak
memory) and two inline SVG bar charts. No JavaScript, no fonts or styles from
the network. Markdown gets the same tables, column for column, and a text bar
chart, which renders anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from aoe_pack._io import write_atomic
from aoe_pack.bench._svg import Bar, bar_chart
from aoe_pack.bench.results import ArtifactResult, BenchReport, Status
from aoe_pack.errors import BenchReportError, UsageError

MAX_REPORT_BYTES = 64 << 20
_FORMATS = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown"}


@dataclass(frozen=True, kw_only=True)
class Row:
    """One artifact on one device."""

    artifact: str
    device: str
    series: int
    result: ArtifactResult


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Several reports lined up: device labels, artifact labels and their rows."""

    reports: tuple[BenchReport, ...]
    devices: tuple[str, ...]
    artifacts: tuple[str, ...]
    rows: tuple[Row, ...]
    notes: tuple[str, ...]

    @classmethod
    def of(cls, reports: Sequence[BenchReport]) -> Comparison:
        if not reports:
            raise UsageError("no report to compare")
        devices: list[str] = []
        for r in reports:
            label, n = r.device.name, 2
            while label in devices:  # the same machine twice (e.g. before and after)
                label, n = f"{r.device.name} ({n})", n + 1
            devices.append(label)
        bundles = {(r.bundle.tag, r.bundle.version, r.bundle.sha256) for r in reports}
        several = len(bundles) > 1
        notes = []
        if several:
            notes.append(
                "the reports measured different bundles; artifacts are labelled with "
                "the bundle's tag and version"
            )
        artifacts: list[str] = []
        rows: list[Row] = []
        for i, (r, device) in enumerate(zip(reports, devices, strict=True)):
            for a in r.artifacts:
                label = f"{r.bundle.tag} {r.bundle.version} {a.name}" if several else a.name
                if label not in artifacts:
                    artifacts.append(label)
                rows.append(Row(artifact=label, device=device, series=i, result=a))
        rows.sort(key=lambda row: (artifacts.index(row.artifact), row.series))
        return cls(
            reports=tuple(reports),
            devices=tuple(devices),
            artifacts=tuple(artifacts),
            rows=tuple(rows),
            notes=tuple(notes),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "devices": list(self.devices),
            "artifacts": list(self.artifacts),
            "rows": len(self.rows),
            "notes": list(self.notes),
        }


def load_report(path: Path) -> BenchReport:
    """Read one JSON report written by ``aoe-pack bench`` (``--out`` or ``--json``)."""
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            raise BenchReportError(f"{path} is larger than a bench report can be")
        doc = json.loads(path.read_bytes())
    except OSError as e:
        raise BenchReportError(f"cannot read report {path}: {e.strerror}") from e
    except ValueError as e:
        raise BenchReportError(f"{path} is not JSON: {e}") from e
    return BenchReport.from_dict(doc, origin=str(path))


def format_for(out: Path) -> str:
    """``html`` or ``markdown``, from the output file's extension."""
    fmt = _FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"cannot tell the report format from {out.name!r}",
            hint="name the output FILE.html (table and SVG plots) or FILE.md (markdown)",
        )
    return fmt


def write_comparison(report_paths: Sequence[Path], out: Path) -> Comparison:
    """Merge the reports at ``report_paths`` into ``out`` (.html or .md), atomically."""
    fmt = format_for(out)
    comparison = Comparison.of([load_report(p) for p in report_paths])
    text = render_html(comparison) if fmt == "html" else render_markdown(comparison)
    write_atomic(out, text.encode())
    return comparison


def _num(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _size(n: int | None) -> str:
    """Bytes in binary units, as ``inspect`` prints file sizes: 812 B, 4.7 MiB."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _cells(r: ArtifactResult) -> list[str]:
    lat = r.latency
    return [
        _size(r.size),
        _num(r.load_ms),
        _num(lat.p50 if lat else None, 3),
        _num(lat.p90 if lat else None, 3),
        _num(lat.p99 if lat else None, 3),
        _num(r.peak_mib, 1),
    ]


_HEAD = ["Size", "Load ms", "p50 ms", "p90 ms", "p99 ms", "Peak MiB"]
_DEVICE_HEAD = (
    "Device",
    "CPU",
    "Cores",
    "Memory MiB",
    "OS",
    "Kernel",
    "Python",
    "Runtimes",
    "Measured",
    "Runs",
)


def _device_cells(r: BenchReport, label: str) -> tuple[str, ...]:
    d = r.device
    return (
        label,
        d.cpu,
        f"{d.usable_cores}/{d.cores}",
        _num(d.memory_mib, 0),
        d.os,
        d.kernel,
        d.python,
        ", ".join(f"{k} {v}" for k, v in d.runtimes.items()),
        r.created,
        str(r.runs),
    )


def _status(r: ArtifactResult) -> str:
    return r.status.value if r.status is Status.OK else f"{r.status.value}: {r.error}"


def _latency_bars(c: Comparison) -> list[Bar]:
    return [
        Bar(
            group=row.artifact,
            series=row.series,
            value=row.result.latency.p50,
            tick=row.result.latency.p90,
            whisker=row.result.latency.p99,
            tooltip=f"{row.artifact} on {row.device}: p50 {row.result.latency.p50:.3f} ms, "
            f"p90 {row.result.latency.p90:.3f} ms, p99 {row.result.latency.p99:.3f} ms",
        )
        for row in c.rows
        if row.result.latency is not None
    ]


def _memory_bars(c: Comparison) -> list[Bar]:
    return [
        Bar(
            group=row.artifact,
            series=row.series,
            value=row.result.peak_mib,
            base=row.result.baseline_mib,
            tooltip=f"{row.artifact} on {row.device}: peak {row.result.peak_mib:.1f} MiB"
            + (
                f", {row.result.baseline_mib:.1f} MiB before the runtime was imported"
                if row.result.baseline_mib is not None
                else ""
            ),
        )
        for row in c.rows
        if row.result.peak_mib is not None
    ]


_CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0 2em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td, tr.skipped td { color: #999; }
.note { color: #8a5a00; }
"""


def render_html(c: Comparison) -> str:
    """A self-contained HTML page."""
    e = escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>aoe-pack bench comparison</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>aoe-pack bench comparison</h1>",
    ]
    for r in {(r.bundle.tag, r.bundle.version, r.bundle.sha256): r for r in c.reports}.values():
        b = r.bundle
        parts.append(
            f"<p>Bundle <b>{e(b.tag)} {e(b.version)}</b> (sha256 <code>{e(b.sha256)}</code>)</p>"
        )
    parts.extend(f'<p class="note">{e(n)}</p>' for n in c.notes)
    parts.append("<h2>Devices</h2><table><tr>")
    parts.extend(f"<th>{h}</th>" for h in _DEVICE_HEAD)
    parts.append("</tr>")
    for r, label in zip(c.reports, c.devices, strict=True):
        cells = _device_cells(r, label)
        parts.append("<tr>" + "".join(f"<td>{e(x)}</td>" for x in cells) + "</tr>")
        parts.extend(
            f'<tr><td colspan="{len(_DEVICE_HEAD)}" class="note">{e(label)}: {e(n)}</td></tr>'
            for n in r.notes
        )
    parts.append("</table><h2>Results</h2><table><tr><th>Artifact</th><th>Device</th>")
    parts.extend(f"<th>{h}</th>" for h in _HEAD)
    parts.append("<th>Status</th></tr>")
    for row in c.rows:
        a = row.result
        parts.append(
            f'<tr class="{a.status.value}"><td>{e(row.artifact)}</td><td>{e(row.device)}</td>'
            + "".join(f'<td class="n">{x}</td>' for x in _cells(a))
            + f"<td>{e(_status(a))}</td></tr>"
        )
    parts.append("</table><h2>Latency</h2>")
    parts.append(
        "<p>Bars end at the median (p50); the tick marks p90 and the whisker reaches p99. "
        "A whisker too long for the axis ends in an arrowhead, and the figure after the "
        "arrow (\u2192) in its label is its p99.</p>"
    )
    parts.append(bar_chart("Inference latency", "ms", c.devices, _latency_bars(c)))
    parts.append("<h2>Peak memory</h2>")
    parts.append(
        "<p>Peak resident memory of a process that loaded and ran only that artifact. "
        "The pale part is that process before the runtime was imported (Python, numpy, "
        "the inputs): the rest is the runtime, the model and its working memory.</p>"
    )
    parts.append(bar_chart("Peak resident memory", "MiB", c.devices, _memory_bars(c)))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines.extend("| " + " | ".join(_md(x) for x in row) + " |" for row in rows)
    return lines


def _text_bars(c: Comparison, width: int = 40) -> list[str]:
    bars = [(row, row.result.latency.p50) for row in c.rows if row.result.latency is not None]
    top = max((v for _, v in bars), default=0.0) or 1.0
    a_w = max((len(row.artifact) for row, _ in bars), default=0)
    d_w = max((len(row.device) for row, _ in bars), default=0)
    lines = []
    for row, v in bars:
        eighths = round(v / top * width * 8)
        bar = "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]
        lines.append(f"{row.artifact:<{a_w}}  {row.device:<{d_w}}  {bar} {v:.3f} ms")
    return lines


def render_markdown(c: Comparison) -> str:
    """Markdown: the tables, and a text bar chart of p50 latency."""
    lines = ["# aoe-pack bench comparison", ""]
    for r in {(r.bundle.tag, r.bundle.version, r.bundle.sha256): r for r in c.reports}.values():
        lines.append(f"Bundle **{r.bundle.tag} {r.bundle.version}** (sha256 `{r.bundle.sha256}`)")
        lines.append("")
    for n in c.notes:
        lines += [f"> {n}", ""]
    lines += ["## Devices", ""]
    lines += _md_table(
        _DEVICE_HEAD,
        [_device_cells(r, label) for r, label in zip(c.reports, c.devices, strict=True)],
    )
    # HTML gives each device's notes a row of the table; markdown, a list under it.
    device_notes = [
        f"- {label}: {n}" for r, label in zip(c.reports, c.devices, strict=True) for n in r.notes
    ]
    if device_notes:
        lines += ["", *device_notes]
    lines += ["", "## Results", ""]
    lines += _md_table(
        ("Artifact", "Device", *_HEAD, "Status"),
        [(row.artifact, row.device, *_cells(row.result), _status(row.result)) for row in c.rows],
    )
    lines += ["", "## p50 latency", "", "```text", *_text_bars(c), "```", ""]
    return "\n".join(lines)
