"""The JVM library (clients/jvm) built by `.ci/jvm`, and how tests call it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class JvmBuild:
    """The outcome of `.ci/jvm test`: where the classes are, and what JUnit said."""

    out: Path
    returncode: int
    log: str

    @property
    def classpath(self) -> str:
        return os.pathsep.join(str(self.out / d) for d in ("classes", "test-classes"))

    def run(
        self,
        *args: str,
        stdin: bytes | None = None,
        timeout: float = 600,
        java_options: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[bytes]:
        """Run the cross-check tool with ``args`` (and ``java_options`` for the JVM, e.g. -Xmx)."""
        return subprocess.run(
            [
                "java",
                *java_options,
                "-cp",
                self.classpath,
                "dev.aoepack.crosscheck.CrossCheck",
                *args,
            ],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
