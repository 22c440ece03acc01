"""``keygen`` and ``public-key``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aoe_pack.cli import _streams
from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import env_password, json_option, key_password_option, load_signing_keys
from aoe_pack.cli._output import Output


@click.command()
@click.option(
    "--out",
    "-o",
    "prefix",
    required=True,
    type=click.Path(path_type=Path),
    metavar="PREFIX",
    help="Writes PREFIX.key (mode 0600) and PREFIX.pub.",
)
@click.option(
    "--type",
    "kind",
    type=click.Choice(["ed25519", "p256", "x25519", "p256-kem", "mlkem768-x25519", "aes256"]),
    default="ed25519",
    show_default=True,
    help="ed25519/p256 sign bundles; x25519 (default for devices), p256-kem (hardware "
    "keystores) and mlkem768-x25519 (post-quantum hybrid) receive encrypted bundles; "
    "aes256 makes a symmetric --encryption-key-file.",
)
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
@json_option
def keygen(prefix: Path, kind: str, force: bool, json_mode: bool) -> None:
    """Generate a key pair.

    \b
    The private key is PKCS#8 PEM, encrypted when a password is given through
    AOE_PACK_PASSWORD or, in a terminal, at the prompt (leave it empty for none).
    Wherever aoe-pack takes a key you can pass a path or env://VAR.
    Example:
      aoe-pack keygen --out keys/release            # Ed25519 signing key
      aoe-pack keygen --type x25519 --out keys/app  # recipient for encrypted bundles
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.keys import keygen as _keygen

        password = env_password()
        if password is None and kind != "aes256" and sys.stdin.isatty() and not json_mode:
            value = click.prompt(
                "Password to encrypt the private key (empty for none)",
                hide_input=True,
                confirmation_prompt=True,
                default="",
                show_default=False,
                err=True,
            )
            password = value.encode() or None
        result = _keygen(kind, prefix, password=password, force=force)

    def text() -> None:
        output.line(
            f"wrote {result.private_path}"
            + (f" and {result.public_path}" if result.public_path else ""),
            fg="green",
            bold=True,
        )
        output.line(f"  type   {result.kind}{' (password-protected)' if result.encrypted else ''}")
        output.line(f"  keyid  {result.key_id}")

    output.result(result.to_dict(), text)


@click.command("public-key")
@click.option(
    "--sign-key",
    "ref",
    required=True,
    metavar="KEY",
    help="The signing key: a path, env://VAR, or a key held in a token "
    "(pkcs11:token=...;object=...?module-path=...).",
)
@key_password_option("--sign-key")
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the public key here (SPKI PEM, as keygen's PREFIX.pub); without it, print it.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@json_option
def public_key(
    ref: str,
    key_passwords: tuple[tuple[str, str], ...],
    out: Path | None,
    force: bool,
    json_mode: bool,
) -> None:
    """Write the public key of a signing key, for --root-key, --trusted-key and devices.

    \b
    A key in an HSM never leaves it; this reads its public key from the token,
    as aoe-pack signs with it, so the key id devices compute from the file is
    the one its signatures carry. The key first signs a random challenge that
    must verify under that public key: one that belongs to another key pair
    (a replaced public key object) is refused. It works for key files too.
    Example:
      export AOE_PACK_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so
      KEY='pkcs11:token=release;object=root'
      aoe-pack public-key --sign-key "$KEY" --key-password "$KEY" env://PIN --out root.pub
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.keys import export_public_key

        (key,) = load_signing_keys((ref,), key_passwords)
        result = export_public_key(key, out, force=force)

    def text() -> None:
        if result.path is None:
            click.echo(result.pem.decode("ascii"), file=_streams.out(), nl=False)
            return
        output.line(f"wrote {result.path}", fg="green", bold=True)
        output.line(f"  type   {result.kind}")
        output.line(f"  keyid  {result.key_id}")

    output.result(result.to_dict(), text)
