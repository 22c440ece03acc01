"""The one place where errors become messages and exit codes.

The rule (see :mod:`aoe_pack.errors`): exit code 2 when the command line
itself is wrong, as the arguments alone show (click's usage errors and every
:class:`~aoe_pack.errors.UsageError`); exit code 1 when a well-formed command
was refused or failed (every other :class:`~aoe_pack.errors.AoePackError`, and
an internal error); 130 when interrupted.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import click

from aoe_pack.cli import _streams
from aoe_pack.cli._output import emit_json, use_color
from aoe_pack.errors import (
    EXIT_FAILURE,
    EXIT_USAGE,
    AoePackError,
    ConfigValidationError,
    UsageError,
)


def exit_code_for(error: AoePackError) -> int:
    """2 if the command line itself is wrong (a UsageError), else 1: the module's rule."""
    return EXIT_USAGE if isinstance(error, UsageError) else EXIT_FAILURE


@contextmanager
def handle_errors(json_mode: bool) -> Iterator[None]:
    """Run a command body; render an :class:`AoePackError` and exit with its code."""
    try:
        yield
    except AoePackError as e:
        _render(e, json_mode)
        sys.exit(exit_code_for(e))
    except KeyboardInterrupt:
        click.echo("interrupted", file=_streams.err())
        sys.exit(130)
    except (click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except Exception:  # noqa: BLE001 - a bug, not the user's mistake: say so, keep the traceback
        traceback.print_exc(file=_streams.err())
        click.echo(
            "error: internal error in aoe-pack (a bug; please report it with the traceback above)",
            file=_streams.err(),
        )
        sys.exit(EXIT_FAILURE)


def _render(e: AoePackError, json_mode: bool) -> None:
    if json_mode:
        err: dict[str, object] = {"code": e.code, "type": type(e).__name__, "message": e.message}
        if e.hint:
            err["hint"] = e.hint
        if isinstance(e, ConfigValidationError):
            err["violations"] = [
                v.__dict__ if hasattr(v, "__dict__") else str(v) for v in e.violations
            ]
        emit_json({**e.extra(), "ok": False, "error": err})
        return
    stream = _streams.err()
    color = use_color(stream)
    head = click.style("error:", fg="red", bold=True) if color else "error:"
    click.echo(f"{head} {e.message}", file=stream)
    if e.hint:
        click.echo(f"hint: {e.hint}", file=stream)


def render_usage_error(message: str) -> None:
    """A command-line usage error that click found, as ``--json`` output."""
    emit_json({"ok": False, "error": {"code": "usage", "type": "UsageError", "message": message}})
