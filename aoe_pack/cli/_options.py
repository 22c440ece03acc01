"""Options shared by several commands."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from aoe_pack.cli import _streams
from aoe_pack.errors import KeyPasswordError
from aoe_pack.keys.password import PASSWORD_ENV

if TYPE_CHECKING:
    # The key classes only annotate here: loading keys (cryptography) is the callbacks' work.
    from aoe_pack.keys import DecryptionKey, PublicKey, SigningKey

FC = TypeVar("FC", bound=Callable[..., object])

_NEGATIVE_NUMBER = re.compile(r"-(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class NumberArgumentsCommand(click.Command):
    """A command whose numeric arguments may be typed negative, to be told their range.

    click takes ``-5`` for an unknown option ("No such option: -5"). Here a
    negative number that is not the value of the option before it is passed
    after ``--`` as an argument, so the argument's own type says what is
    wrong ("-5.0 is not in the range 0<=x<=100").
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _numbers_as_arguments(self, args))


def _numbers_as_arguments(command: click.Command, args: list[str]) -> list[str]:
    takes_value = {
        name
        for p in command.params
        if isinstance(p, click.Option) and not p.is_flag and not p.count
        for name in p.opts
    }
    kept: list[str] = []
    numbers: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return [*kept, "--", *numbers, *args[i + 1 :]]
        if arg in takes_value:
            kept += args[i : i + 2]
            i += 2
            continue
        (numbers if _NEGATIVE_NUMBER.fullmatch(arg) else kept).append(arg)
        i += 1
    return [*kept, "--", *numbers] if numbers else kept


INPUT_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)
"""A file the command reads: one that is missing or a folder is a usage error (exit 2)."""
BUNDLE_FILE = click.Path(path_type=Path)
"""A bundle to read: the library refuses a missing one or a folder (BundleNotFoundError,
exit 2) only after the keys load, as docs/format.md §10 asks."""

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


def key_password_option(keys_option: str) -> Callable[[FC], FC]:
    """``--key-password KEY SOURCE``: one private key's password, bound to the key by name.

    Bound by the key's reference, not by position, so that reordering the
    ``keys_option`` options cannot hand one key's password to another.
    """
    pin = " For a pkcs11: key, SOURCE holds its token's PIN." if keys_option == "--sign-key" else ""
    return click.option(
        "--key-password",
        "key_passwords",
        type=(str, str),
        multiple=True,
        metavar="KEY SOURCE",
        help=f"Read the password of private key KEY (written as given to {keys_option}) "
        "from SOURCE: env://VAR, or a file (less one trailing newline). Repeat once per "
        f"encrypted key. A key without one uses {PASSWORD_ENV}, then a terminal prompt.{pin}",
    )


def prompt_password(origin: str) -> bytes:
    """Ask for a key's password in a terminal; fail clearly elsewhere."""
    if not sys.stdin.isatty():
        raise KeyPasswordError(
            f"{origin}: the private key is encrypted and there is no terminal to ask",
            hint=f"pass --key-password {origin} SOURCE (env://VAR or a file), "
            f"or set {PASSWORD_ENV}",
        )
    value: str = click.prompt(f"Password for {origin}", hide_input=True, err=True)
    return value.encode()


def env_password() -> bytes | None:
    """The password from the environment, if any (as bytes: it may not be UTF-8)."""
    from aoe_pack.keys.password import env_password as _env_password

    return _env_password()


def read_trusted_root(path: Path) -> bytes:
    """The bytes of a ``--trusted-root`` file, read at most to the root's size cap."""
    from aoe_pack.client.device_files import read_trusted_root as _read

    return _read(path)


def key_passwords_by_option(
    pairs: tuple[tuple[str, str], ...], keys: Mapping[str, Collection[str]]
) -> dict[str, tuple[tuple[str, str], ...]]:
    """Split ``--key-password`` pairs among a command's private-key options.

    ``keys`` maps each option (``--sign-key``, ``--delta-sign-key``,
    ``--decryption-key``) to the references given to it. Every pair must name
    a key of one of them (and no key twice): checked once here, so a password
    for a ``--sign-key`` is not refused as naming no ``--decryption-key``.
    """
    from aoe_pack.keys import password_sources

    given = {ref for refs in keys.values() for ref in refs}
    options = [option for option, refs in keys.items() if refs] or list(keys)
    password_sources(pairs, given, option=" or ".join(options))
    return {option: tuple(p for p in pairs if p[0] in refs) for option, refs in keys.items()}


def load_signing_keys(
    refs: tuple[str, ...], key_passwords: tuple[tuple[str, str], ...]
) -> list[SigningKey]:
    """The ``--sign-key`` keys, each opened with its ``--key-password`` source if it has one."""
    from aoe_pack.keys import load_signing_key, password_sources

    sources = password_sources(key_passwords, refs, option="--sign-key")
    return [load_signing_key(k, password=sources.get(k), prompt=prompt_password) for k in refs]


def load_optional_decryption_key(
    ref: str | None,
    key_passwords: tuple[tuple[str, str], ...],
    *,
    option: str = "--decryption-key",
) -> DecryptionKey | None:
    """The optional ``--decryption-key`` (or the key ``option`` names), opened with its
    ``--key-password`` source if any."""
    from aoe_pack.keys import load_decryption_key, password_sources

    sources = password_sources(key_passwords, () if ref is None else (ref,), option=option)
    if ref is None:
        return None
    return load_decryption_key(ref, password=sources.get(ref), prompt=prompt_password)


def load_verification_keys(
    trusted_refs: tuple[str, ...],
    decryption_ref: str | None,
    key_passwords: tuple[tuple[str, str], ...] = (),
) -> tuple[list[PublicKey], DecryptionKey | None]:
    """The trusted signer keys and optional decryption key of verify, unpack and bench."""
    from aoe_pack.keys.resolve import trusted_key

    trusted = [trusted_key(k) for k in trusted_refs]
    return trusted, load_optional_decryption_key(decryption_ref, key_passwords)


timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Deadline for each download from an http(s):// repository (default: 600); one "
    "averaging under 1 KiB/s after its first 30 s stops sooner.",
)
