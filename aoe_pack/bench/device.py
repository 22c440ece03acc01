"""What machine a benchmark ran on: CPU, cores, memory, OS, Python, runtimes.

Everything is read from ``/proc`` where Linux (and Android) offer it, and from
:mod:`platform` otherwise, so the description works without any ML framework.
The runtime versions are filled in by the benchmark itself, from the packages
each artifact's runtime actually imported (see :mod:`aoe_pack.bench._child`).
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aoe_pack.errors import BenchReportError

_CPUINFO = Path("/proc/cpuinfo")
_MEMINFO = Path("/proc/meminfo")
# x86 names the model per core; ARM kernels name the SoC ("Hardware") or only
# give the implementer and part numbers.
_CPU_KEYS = ("model name", "Hardware", "Processor", "cpu model", "uarch")


@dataclass(frozen=True, kw_only=True)
class Device:
    """A machine's description, as recorded in every bench report."""

    name: str
    """A label for comparisons; the host name unless the user chose one."""
    cpu: str
    machine: str
    """The architecture (``x86_64``, ``aarch64``...)."""
    cores: int
    """Logical CPUs in the machine."""
    usable_cores: int
    """Logical CPUs this process may run on (affinity, containers)."""
    memory_mib: int | None
    os: str
    kernel: str
    python: str
    runtimes: Mapping[str, str] = field(default_factory=dict)
    """Distribution name -> version of every runtime package the benchmark loaded."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def with_runtimes(self, runtimes: Mapping[str, str]) -> Device:
        return replace(self, runtimes=dict(sorted(runtimes.items())))

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "name": self.name,
            "cpu": self.cpu,
            "machine": self.machine,
            "cores": self.cores,
            "usableCores": self.usable_cores,
            "memoryMiB": self.memory_mib,
            "os": self.os,
            "kernel": self.kernel,
            "python": self.python,
            "runtimes": dict(self.runtimes),
        }

    @classmethod
    def from_dict(cls, d: Any, *, origin: str) -> Device:
        if not isinstance(d, Mapping):
            raise BenchReportError(f"{origin}: 'device' must be an object")
        known = [
            "name",
            "cpu",
            "machine",
            "cores",
            "usableCores",
            "memoryMiB",
            "os",
            "kernel",
            "python",
            "runtimes",
        ]
        try:
            runtimes = d.get("runtimes") or {}
            memory = d.get("memoryMiB")
            return cls(
                name=str(d["name"]),
                cpu=str(d.get("cpu", "")),
                machine=str(d.get("machine", "")),
                cores=int(d.get("cores", 0)),
                usable_cores=int(d.get("usableCores", 0)),
                memory_mib=None if memory is None else int(memory),
                os=str(d.get("os", "")),
                kernel=str(d.get("kernel", "")),
                python=str(d.get("python", "")),
                runtimes={str(k): str(v) for k, v in dict(runtimes).items()},
                extra={k: v for k, v in d.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as e:
            problem = f"no {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
            raise BenchReportError(f"{origin}: the device block is malformed ({problem})") from e

    def summary(self) -> str:
        """One line for people: ``name (cpu, N cores, OS)``."""
        return f"{self.name} ({self.cpu}, {self.usable_cores} cores, {self.os})"


def describe_device(name: str | None = None) -> Device:
    """Describe this machine. ``name`` defaults to the host name."""
    cores = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on macOS or Windows
        usable = cores
    return Device(
        name=name or platform.node() or "unknown",
        cpu=_cpu_model(),
        machine=platform.machine(),
        cores=cores,
        usable_cores=usable,
        memory_mib=_memory_mib(),
        os=_os_name(),
        kernel=f"{platform.system()} {platform.release()}",
        python=f"{platform.python_implementation()} {platform.python_version()}",
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _cpu_model() -> str:
    fields: dict[str, str] = {}
    for line in _read(_CPUINFO).splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip(), value.strip())
    for key in _CPU_KEYS:
        if key in fields:
            return fields[key]
    if "CPU implementer" in fields:
        return f"ARM implementer {fields['CPU implementer']} part {fields.get('CPU part', '?')}"
    return platform.processor() or platform.machine() or "unknown"


def _memory_mib() -> int | None:
    for line in _read(_MEMINFO).splitlines():
        if line.startswith("MemTotal:"):
            with contextlib.suppress(ValueError, IndexError):
                return int(line.split()[1]) // 1024
    return None


def _os_name() -> str:
    if platform.system() == "Linux":
        try:
            release = platform.freedesktop_os_release()
        except OSError:  # Android and minimal containers have no os-release
            return "Linux"
        return release.get("PRETTY_NAME") or release.get("NAME", "Linux")
    if platform.system() == "Darwin":
        return f"macOS {platform.mac_ver()[0]}"
    return platform.platform(terse=True)
