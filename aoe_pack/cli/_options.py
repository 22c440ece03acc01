"""Options shared by several commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

import click

from aoe_pack.cli import _streams
from aoe_pack.errors import KeyPasswordError, KeyTypeError
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
    """The password from the environment, if any."""
    value = os.environ.get(PASSWORD_ENV)
    return value.encode() if value else None


def load_verification_keys(
    trusted_refs: tuple[str, ...], decryption_ref: str | None
) -> tuple[list[PublicKey], DecryptionKey | None]:
    """The trusted signer keys and optional decryption key of verify, unpack and bench."""
    from aoe_pack.keys import load_decryption_key, load_public_key

    trusted = [load_public_key(k) for k in trusted_refs]
    for ref, key in zip(trusted_refs, trusted, strict=True):
        if not key.kind.signs:
            raise KeyTypeError(
                f"{ref} holds an encryption key ({key.algorithm}); "
                "--trusted-key takes a signer's key",
                hint="pass the .pub of the key given to `aoe-pack build --sign-key`",
            )
    if decryption_ref is None:
        return trusted, None
    return trusted, load_decryption_key(decryption_ref, prompt=prompt_password)
