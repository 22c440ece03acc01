"""Run the aoe-pack CLI from the tests, one way everywhere.

:class:`Cli` fixes how a test module runs it: the environment it adds, and
whether it runs in this process (click's CliRunner, the default) or in a fresh
interpreter (``process=True``: ``python -m aoe_pack``, or ``program``), for
what only a real process shows (file descriptors 1 and 2, entry points,
plugins on ``PYTHONPATH``). Calling it runs ``aoe-pack ARGS`` and returns a
:class:`Ran`::

    aoe = Cli(env=NO_PASSWORD)
    r = aoe("verify", bundle, "--trusted-key", pub, json=True)
    assert r.exit_code == 0, r.output
    assert r.doc["ok"]
    assert aoe("inspect", bundle, json=True).expect()["model"]["tag"] == "tag_x"

In this process, exceptions are not caught: a crash fails the test instead
of passing as a non-zero exit code.
"""

from __future__ import annotations

import json as jsonlib
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from aoe_pack.cli import cli

NO_PASSWORD: Mapping[str, str] = {"AOE_PACK_PASSWORD": ""}
"""An empty key password: keys are written unencrypted, and nothing is asked."""


@dataclass(frozen=True)
class Ran:
    """How one run of the CLI ended."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """Both streams, to show when an assertion fails."""
        return self.stdout + self.stderr

    @property
    def doc(self) -> Any:
        """The JSON document on stdout (``--json``)."""
        try:
            return jsonlib.loads(self.stdout)
        except ValueError:
            raise AssertionError(
                f"exit {self.exit_code}, no JSON on stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
            ) from None

    def expect(self, exit_code: int = 0) -> Any:
        """The JSON document, once the run is known to have ended with ``exit_code``."""
        assert self.exit_code == exit_code, self.output
        return self.doc


@dataclass(frozen=True)
class Cli:
    """How a test module runs the CLI (see the module doc)."""

    env: Mapping[str, str] = field(default_factory=dict)
    process: bool = False
    program: Sequence[str] = ()
    """The command of a fresh process; ``python -m aoe_pack`` when empty."""
    cwd: Path | None = None
    timeout: float | None = None
    """Seconds a fresh process may take (subprocess.TimeoutExpired past them)."""

    def __call__(
        self,
        *args: object,
        json: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> Ran:
        """Run ``aoe-pack ARGS`` (with ``--json`` appended when ``json``)."""
        argv = [str(a) for a in args] + (["--json"] if json else [])
        extra = {**self.env, **(env or {})}
        if not (self.process or self.program):
            assert self.cwd is None, "in-process runs share the tests' working folder"
            r = CliRunner().invoke(cli, argv, env=extra, catch_exceptions=False)
            return Ran(r.exit_code, r.stdout, r.stderr)
        p = subprocess.run(
            [*(self.program or (sys.executable, "-m", "aoe_pack")), *argv],
            capture_output=True,
            text=True,
            encoding="utf-8",  # what the CLI writes (cli/_streams.py), not the locale's (Windows)
            errors="replace",  # what a crash prints need not be UTF-8
            env={**os.environ, **extra},
            cwd=self.cwd,
            timeout=self.timeout,
            check=False,
        )
        return Ran(p.returncode, p.stdout, p.stderr)


aoe = Cli()
"""The CLI in this process, in the tests' own environment."""
