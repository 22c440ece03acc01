"""``aoe-pack bench``: time every artifact of a bundle on this device, and compare devices.

:func:`bench_bundle` checks a bundle, then loads and times each artifact
through its runtime (one fresh process per artifact, models only ever in
memory) and returns a :class:`BenchReport` (JSON format ``aoe-bench/v1``).
:func:`write_comparison` merges reports from several devices into an HTML page
with plots, or a markdown file.

The runtimes come from the converters' ``load`` (:mod:`aoe_pack.convert`);
nothing here imports an ML framework in the calling process.
"""

from aoe_pack.bench.device import Device, describe_device
from aoe_pack.bench.report import Comparison, load_report, write_comparison
from aoe_pack.bench.results import (
    ArtifactResult,
    BenchReport,
    BundleIdentity,
    Latency,
    ReportFormat,
    Status,
)
from aoe_pack.bench.run import DEFAULT_RUNS, DEFAULT_WARMUP, bench_bundle

__all__ = [
    "DEFAULT_RUNS",
    "DEFAULT_WARMUP",
    "ArtifactResult",
    "BenchReport",
    "BundleIdentity",
    "Comparison",
    "Device",
    "Latency",
    "ReportFormat",
    "Status",
    "bench_bundle",
    "describe_device",
    "load_report",
    "write_comparison",
]
