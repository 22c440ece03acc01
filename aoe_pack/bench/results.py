"""The bench report: what ran where, and how fast (JSON format ``aoe-bench/v1``).

``BenchReport.to_dict()`` / ``from_dict()`` are symmetric and keep unknown
fields, so a report written by a newer aoe-pack still merges. Times are
milliseconds and memory MiB (2^20 bytes), as JSON numbers: a report is a
measurement, never signed, so float printing does not matter here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aoe_pack._quote import quote_json
from aoe_pack.bench.device import Device
from aoe_pack.errors import BenchReportError


class ReportFormat(StrEnum):
    """Versions of the bench report format this aoe-pack reads."""

    V1 = "aoe-bench/v1"


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    """The runtime could not load or run the artifact here."""
    SKIPPED = "skipped"
    """No converter (hence no runtime) for the artifact is installed here."""


@dataclass(frozen=True, kw_only=True)
class Latency:
    """Latency of one inference, in milliseconds, over the timed runs."""

    p50: float
    p90: float
    p99: float
    mean: float
    min: float
    max: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Latency:
        """Percentiles by linear interpolation between the closest ranks."""
        ordered = sorted(samples_ms)
        if not ordered:
            raise ValueError("no latency samples")

        def pct(q: float) -> float:
            pos = (len(ordered) - 1) * q / 100
            lo = int(pos)
            hi = min(lo + 1, len(ordered) - 1)
            return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

        return cls(
            p50=pct(50),
            p90=pct(90),
            p99=pct(99),
            mean=sum(ordered) / len(ordered),
            min=ordered[0],
            max=ordered[-1],
        )

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


@dataclass(frozen=True, kw_only=True)
class ArtifactResult:
    """One artifact of the bundle, measured (or not) on this device."""

    name: str
    """``runtime-variant``, as in the build's targets (``tflite-fp16``)."""
    runtime: str
    variant: str | None
    files: tuple[str, ...]
    size: int | None
    """Bytes the artifact takes on a device's disk: every file of its runtime and
    variant (model, weights, sidecars), in plaintext, as ``unpack`` writes them.
    None when a report from elsewhere does not say."""
    status: Status
    error: str | None = None
    load_ms: float | None = None
    """Loading the artifact once its runtime's Python module is imported."""
    first_load_ms: float | None = None
    """The first load in a fresh process, including importing the runtime."""
    first_run_ms: float | None = None
    """The first inference after loading (lazy allocation shows here)."""
    latency: Latency | None = None
    runs: int = 0
    samples_ms: tuple[float, ...] = ()
    peak_mib: float | None = None
    """Peak resident memory of the process that loaded and ran only this artifact."""
    baseline_mib: float | None = None
    """Resident memory of that process before the runtime was imported."""
    runtime_versions: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def ms(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            **self.extra,
            "name": self.name,
            "runtime": self.runtime,
            "variant": self.variant,
            "files": list(self.files),
            "size": self.size,
            "status": self.status.value,
            "error": self.error,
            "loadMs": ms(self.load_ms),
            "firstLoadMs": ms(self.first_load_ms),
            "firstRunMs": ms(self.first_run_ms),
            "latencyMs": self.latency.to_dict() if self.latency else None,
            "runs": self.runs,
            "samplesMs": [round(v, 4) for v in self.samples_ms],
            "peakMiB": None if self.peak_mib is None else round(self.peak_mib, 2),
            "baselineMiB": None if self.baseline_mib is None else round(self.baseline_mib, 2),
            "runtimeVersions": dict(self.runtime_versions),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ArtifactResult:
        lat = d.get("latencyMs")
        return cls(
            name=str(d["name"]),
            runtime=str(d["runtime"]),
            variant=None if d.get("variant") is None else str(d["variant"]),
            files=tuple(str(f) for f in d.get("files", ())),
            size=None if d.get("size") is None else int(d["size"]),
            status=Status(d["status"]),
            error=None if d.get("error") is None else str(d["error"]),
            load_ms=_opt_float(d.get("loadMs")),
            first_load_ms=_opt_float(d.get("firstLoadMs")),
            first_run_ms=_opt_float(d.get("firstRunMs")),
            latency=Latency(**{k: float(lat[k]) for k in Latency.__dataclass_fields__})
            if lat
            else None,
            runs=int(d.get("runs", 0)),
            samples_ms=tuple(float(v) for v in d.get("samplesMs", ())),
            peak_mib=_opt_float(d.get("peakMiB")),
            baseline_mib=_opt_float(d.get("baselineMiB")),
            runtime_versions={
                str(k): str(v) for k, v in dict(d.get("runtimeVersions", {})).items()
            },
            extra={k: v for k, v in d.items() if k not in _ARTIFACT_KEYS},
        )


_ARTIFACT_KEYS = frozenset(
    [
        "name",
        "runtime",
        "variant",
        "files",
        "size",
        "status",
        "error",
        "loadMs",
        "firstLoadMs",
        "firstRunMs",
        "latencyMs",
        "runs",
        "samplesMs",
        "peakMiB",
        "baselineMiB",
        "runtimeVersions",
    ]
)


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True, kw_only=True)
class BundleIdentity:
    """Which bundle was measured, and how far it was checked first."""

    path: str
    tag: str
    name: str
    version: str
    sha256: str
    size: int
    encrypted: bool
    signatures_checked: bool
    """False when no --trusted-key was given: only integrity was checked."""
    signers: tuple[str, ...] = ()
    """Key ids of the trusted signatures that verified."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "tag": self.tag,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "encrypted": self.encrypted,
            "signaturesChecked": self.signatures_checked,
            "signers": list(self.signers),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BundleIdentity:
        return cls(
            path=str(d.get("path", "")),
            tag=str(d["tag"]),
            name=str(d.get("name", "")),
            version=str(d["version"]),
            sha256=str(d["sha256"]),
            size=int(d.get("size", 0)),
            encrypted=bool(d.get("encrypted", False)),
            signatures_checked=bool(d.get("signaturesChecked", False)),
            signers=tuple(str(s) for s in d.get("signers", ())),
        )


@dataclass(frozen=True, kw_only=True)
class BenchReport:
    """Every artifact of one bundle, measured on one device."""

    format: ReportFormat = ReportFormat.V1
    created: str
    """When the benchmark ran, ISO 8601 in UTC."""
    tool: str
    """The aoe-pack version that measured."""
    device: Device
    bundle: BundleIdentity
    runs: int
    warmup: int
    seed: int
    artifacts: tuple[ArtifactResult, ...]
    notes: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def measured(self) -> tuple[ArtifactResult, ...]:
        return tuple(a for a in self.artifacts if a.status is Status.OK)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "format": self.format.value,
            "created": self.created,
            "tool": self.tool,
            "device": self.device.to_dict(),
            "bundle": self.bundle.to_dict(),
            "settings": {"runs": self.runs, "warmup": self.warmup, "seed": self.seed},
            "artifacts": [a.to_dict() for a in self.artifacts],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: Any, *, origin: str = "report") -> BenchReport:
        """Parse a report; a clear error names the file and what is wrong."""
        if not isinstance(d, Mapping):
            raise BenchReportError(f"{origin}: a bench report is a JSON object")
        fmt = d.get("format")
        try:
            version = ReportFormat(str(fmt))
        except ValueError:
            reads = ", ".join(v.value for v in ReportFormat)
            raise BenchReportError(
                f'{origin}: not a bench report (no "format"; this aoe-pack reads {reads})'
                if fmt is None
                else f"{origin}: report format {quote_json(fmt)} is not one this aoe-pack "
                f"reads ({reads})",
                hint="write it with `aoe-pack bench BUNDLE --out FILE.json`, "
                "or upgrade aoe-pack to read newer reports",
            ) from None
        known = {
            "format",
            "created",
            "tool",
            "device",
            "bundle",
            "settings",
            "artifacts",
            "notes",
            "ok",
        }  # "ok": the envelope of `bench --json` on stdout
        try:
            settings = d.get("settings", {})
            return cls(
                format=version,
                created=str(d.get("created", "")),
                tool=str(d.get("tool", "")),
                device=Device.from_dict(d.get("device"), origin=origin),
                bundle=BundleIdentity.from_dict(d["bundle"]),
                runs=int(settings.get("runs", 0)),
                warmup=int(settings.get("warmup", 0)),
                seed=int(settings.get("seed", 0)),
                artifacts=tuple(ArtifactResult.from_dict(a) for a in d["artifacts"]),
                notes=tuple(str(n) for n in d.get("notes", ())),
                extra={k: v for k, v in d.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise BenchReportError(
                f"{origin}: malformed bench report ({type(e).__name__}: {e})"
            ) from e
