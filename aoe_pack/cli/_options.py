"""Options shared by several commands."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from aoe_pack.cli import _streams
from aoe_pack.errors import KeyPasswordError
from aoe_pack.keys import PASSWORD_ENV, DecryptionKey, PublicKey

FC = TypeVar("FC", bound=Callable[..., object])

json_option = click.option(
    "--json", "json_mode", is_flag=True, help="Print a machine-readable JSON result on stdout."
)


def _set_verbosity(level: int) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            _streams.set_verbosity(level)

    return callback


def verbosity_options(f: FC) -> FC:
    """``-v/--verbose`` and ``-q/--quiet``, accepted before or after the command name."""
    f = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_verbosity(_streams.QUIET),
        help="Show errors only.",
    )(f)
    return click.option(
        "-v",
        "--verbose",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_verbosity(_streams.VERBOSE),
        help="Also show what TensorFlow and the runtimes log (hidden by default).",
    )(f)


trusted_key_option = click.option(
    "--trusted-key",
    "trusted_keys",
    multiple=True,
    required=True,
    metavar="PUB",
    help="Public key of a trusted signer: a path or env://VAR. Repeat for several.",
)
threshold_option = click.option(
    "--threshold",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many distinct trusted keys must have signed.",
)
decryption_key_option = click.option(
    "--decryption-key",
    metavar="KEY",
    help="Recipient private key, or the --encryption-key-file used at build time "
    "(path or env://VAR). Also checks the decrypted model against its signed digest.",
)


def prompt_password(origin: str) -> bytes:
    """Ask for a key's password in a terminal; fail clearly elsewhere."""
    if not sys.stdin.isatty():
        raise KeyPasswordError(
            f"{origin}: the private key is encrypted and there is no terminal to ask",
            hint=f"set {PASSWORD_ENV}",
        )
    value: str = click.prompt(f"Password for {origin}", hide_input=True, err=True)
    return value.encode()


def env_password() -> bytes | None:
    """The password from the environment, if any (as bytes: it may not be UTF-8)."""
    from aoe_pack.keys.load import env_password as _env_password

    return _env_password()


def read_trusted_root(path: Path) -> bytes:
    """The bytes of a ``--trusted-root`` file, read at most to the root's size cap."""
    from aoe_pack.client.device_files import read_trusted_root as _read

    return _read(path)


def load_verification_keys(
    trusted_refs: tuple[str, ...], decryption_ref: str | None
) -> tuple[list[PublicKey], DecryptionKey | None]:
    """The trusted signer keys and optional decryption key of verify, unpack and bench."""
    from aoe_pack.keys import load_decryption_key
    from aoe_pack.keys.resolve import trusted_key

    trusted = [trusted_key(k) for k in trusted_refs]
    if decryption_ref is None:
        return trusted, None
    return trusted, load_decryption_key(decryption_ref, prompt=prompt_password)


timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Deadline for each download from an http(s):// repository (default: 600); one "
    "averaging under 1 KiB/s after its first 30 s stops sooner.",
)
