"""Output for every command: text or ``--json``, colour, progress bars.

Colour follows the terminal and ``NO_COLOR`` (https://no-color.org). Progress
bars appear only when stderr is a terminal and ``--json`` is off. rich is
imported only when a bar or table is actually drawn, which keeps ``verify``
fast to start. Text output is plain lines, never truncated, so it greps well.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from aoe_pack.cli import _streams


def use_color(stream: Any) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set."""
    return bool(stream.isatty()) and not os.environ.get("NO_COLOR")


@dataclass
class Output:
    """Where a command reports: JSON on stdout, or text for people.

    Everything goes to the user's real streams (:mod:`aoe_pack.cli._streams`),
    never to whatever a framework has done to ``sys.stdout``.
    """

    json_mode: bool

    def result(self, payload: dict[str, Any], text: Callable[[], None]) -> None:
        """Emit the command's result: ``payload`` as JSON, or ``text()`` for people."""
        if self.json_mode:
            emit_json({"ok": True, **payload})
        else:
            text()

    def line(self, message: str = "", *, fg: str | None = None, bold: bool = False) -> None:
        """A line of text on stdout (ignored in JSON mode and with --quiet)."""
        if not self.json_mode and _streams.verbosity() > _streams.QUIET:
            stream = _streams.out()
            color = use_color(stream)
            click.echo(click.style(message, fg=fg, bold=bold) if color else message, file=stream)

    def info(self, message: str) -> None:
        """A progress note on stderr for people (silent in JSON mode and with --quiet)."""
        if not self.json_mode and _streams.verbosity() > _streams.QUIET:
            click.echo(message, file=_streams.err())

    def warn(self, message: str) -> None:
        """A warning on stderr (also in JSON mode: stdout stays machine-readable)."""
        if _streams.verbosity() <= _streams.QUIET:
            return
        stream = _streams.err()
        color = use_color(stream)
        click.echo(
            click.style(f"warning: {message}", fg="yellow") if color else f"warning: {message}",
            file=stream,
        )

    @contextlib.contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None] | None]:
        """A byte-count progress bar on a terminal; ``None`` elsewhere."""
        if self.json_mode or not _streams.err().isatty() or total < (8 << 20):
            yield None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = Console(file=_streams.err(), no_color=bool(os.environ.get("NO_COLOR")))
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)


def emit_json(document: dict[str, Any]) -> None:
    """One JSON document on the user's stdout."""
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str), file=_streams.out())


def file_size(path: Path) -> int:
    """File size for a progress bar; 0 if unreadable (the command reports that itself)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
