"""The one place where errors become messages and exit codes."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import click

from aoe_pack.cli._output import use_color
from aoe_pack.errors import EXIT_FAILURE, AoePackError, ConfigValidationError


@contextmanager
def handle_errors(json_mode: bool) -> Iterator[None]:
    """Run a command body; render an :class:`AoePackError` and exit with its code."""
    try:
        yield
    except AoePackError as e:
        _render(e, json_mode)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except (click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except Exception:  # noqa: BLE001 - a bug, not the user's mistake: say so, keep the traceback
        traceback.print_exc()
        click.echo(
            "error: internal error in aoe-pack (a bug; please report it with the traceback above)",
            err=True,
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
        click.echo(json.dumps({"ok": False, "error": err}, indent=2, sort_keys=True, default=str))
        return
    color = use_color(sys.stderr)
    head = click.style("error:", fg="red", bold=True) if color else "error:"
    click.echo(f"{head} {e.message}", err=True)
    if e.hint:
        click.echo(f"hint: {e.hint}", err=True)


def render_usage_error(message: str) -> None:
    """A command-line usage error that click found, as ``--json`` output."""
    err = {"code": "usage", "type": "UsageError", "message": message}
    click.echo(json.dumps({"ok": False, "error": err}, indent=2, sort_keys=True))
