"""Options and output shared by the commands that make delta updates (docs/format.md §16)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from aoe_pack.cli._options import decryption_key_option

if TYPE_CHECKING:
    from aoe_pack.cli._output import Output
    from aoe_pack.publish.deltas import DeltaOutcome

FC = TypeVar("FC", bound=Callable[..., object])

delta_sign_key_option = click.option(
    "--delta-sign-key",
    "delta_sign_keys",
    multiple=True,
    metavar="KEY",
    help="Sign the deltas with this bundle-signing key (default: the --sign-key keys); "
    "devices verify a delta with the keys that signed the release's bundle. Repeatable.",
)


delta_max_percent_option = click.option(
    "--delta-max-percent",
    type=click.IntRange(1, 99),
    default=75,
    show_default=True,
    metavar="PCT",
    help="Record a delta only if it is at most this share of the bundle (docs/format.md §16.5).",
)


def delta_options(f: FC) -> FC:
    """``--delta-from``, ``--decryption-key``, ``--delta-sign-key`` and
    ``--delta-max-percent`` of ``manifest publish``."""
    f = delta_max_percent_option(f)
    f = delta_sign_key_option(f)
    f = decryption_key_option(f)
    return click.option(
        "--delta-from",
        "delta_from",
        multiple=True,
        metavar="VERSION",
        help="Also make a delta from this published release to the bundle (repeatable); "
        "recorded only if smaller than the bundle (docs/format.md §16).",
    )(f)


def show_delta(output: Output, o: DeltaOutcome) -> None:
    """One line per delta: recorded with its size, or skipped and why."""
    pct = 100 * o.size / o.bundle_size
    if o.ref is not None:
        output.info(
            f"delta {o.tag} {o.from_version} -> {o.to_version}: {o.size} bytes "
            f"({pct:.1f} % of the bundle), uploaded as {o.ref.url}"
        )
    else:
        output.warn(f"delta {o.tag} {o.from_version} -> {o.to_version} not offered: {o.reason}")
