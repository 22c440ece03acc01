"""Build the JVM library (clients/jvm) once per session, with its JUnit suite run.

`.ci/jvm test` compiles the library at --release 8 and its tests, and runs
every JUnit test; the cross-checks then call the test classpath's
`dev.aoepack.crosscheck.CrossCheck` on what aoe-pack made.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests._jvm import ROOT, JvmBuild


@pytest.fixture(scope="session")
def jvm(tmp_path_factory: pytest.TempPathFactory) -> JvmBuild:
    out = tmp_path_factory.mktemp("jvm")
    proc = subprocess.run(
        ["bash", str(ROOT / ".ci" / "jvm"), "test"],
        cwd=ROOT,
        env={**os.environ, "AOE_JVM_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    sys.stdout.write(proc.stdout[-2000:])
    return JvmBuild(out=out, returncode=proc.returncode, log=proc.stdout + proc.stderr)
