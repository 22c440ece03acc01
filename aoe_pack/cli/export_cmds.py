"""``export model-signing`` and ``export provenance``: a verified bundle, for other tools."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import (
    BUNDLE_FILE,
    decryption_key_option,
    json_option,
    key_password_option,
    load_signing_keys,
    load_verification_keys,
    threshold_option,
)
from aoe_pack.cli._output import Output, file_size

if TYPE_CHECKING:
    from aoe_pack.keys import DecryptionKey, PublicKey, SigningKey

FC = TypeVar("FC", bound=Callable[..., object])


def _common(f: FC) -> FC:
    """The bundle, the exporting key, and how the bundle is verified first."""
    for decorate in reversed(
        (
            click.argument("bundle", type=BUNDLE_FILE),
            click.option(
                "--sign-key",
                required=True,
                metavar="KEY",
                help="Private key that signs the export: a path, env://VAR, or a pkcs11: or "
                "awskms:// key reference.",
            ),
            click.option(
                "--trusted-key",
                "trusted_keys",
                multiple=True,
                metavar="PUB",
                help="Public key of a trusted bundle signer (path or env://VAR); repeatable. "
                "Default: the --sign-key's own public key.",
            ),
            threshold_option,
            decryption_key_option,
            click.option(
                "--trust-recorded-digests",
                is_flag=True,
                help="Export an encrypted bundle without --decryption-key: sign the files' "
                "digests its signed manifest records, which nobody recomputes then "
                "(provenance records it: internalParameters.plaintextChecked false).",
            ),
            key_password_option("--sign-key or --decryption-key"),
            click.option("--force", is_flag=True, help="Overwrite --out if it exists."),
            json_option,
        )
    ):
        f = decorate(f)
    return f


def _keys(
    sign_key: str,
    trusted_keys: tuple[str, ...],
    decryption_key: str | None,
    key_passwords: tuple[tuple[str, str], ...],
) -> tuple[SigningKey, list[PublicKey], DecryptionKey | None]:
    """The exporting key, then the keys that verify the bundle, each with its password source."""
    from aoe_pack.keys import password_sources

    refs = (sign_key,) if decryption_key is None else (sign_key, decryption_key)
    password_sources(key_passwords, refs, option="--sign-key or --decryption-key")
    (key,) = load_signing_keys((sign_key,), tuple(p for p in key_passwords if p[0] == sign_key))
    others = tuple(p for p in key_passwords if p[0] != sign_key)
    trusted, dkey = load_verification_keys(trusted_keys, decryption_key, others)
    return key, trusted, dkey


def _not_checked(output: Output, checked: bool) -> None:
    if not checked:
        output.info(
            "note: --trust-recorded-digests: the file digests are those the bundle's signed "
            "manifest records, not recomputed"
        )


@click.group()
def export() -> None:
    """Write what other tools verify, from a bundle that verified.

    \b
    Example:
      aoe-pack export model-signing mnist.aoe --sign-key keys/release-p256.key
      aoe-pack export provenance mnist.aoe --sign-key keys/release.key
    """


@export.command("model-signing")
@_common
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("model.sig"),
    show_default=True,
    help="The signature file. Keep it outside the model folder, or name it with "
    "--ignore-path if it goes inside.",
)
@click.option(
    "--ignore-path",
    "ignore_paths",
    multiple=True,
    metavar="PATH",
    help="A path inside the model folder for model-signing to skip (besides .git, "
    ".gitattributes, .github and .gitignore), such as model.sig; repeatable.",
)
def model_signing(
    bundle: Path,
    sign_key: str,
    trusted_keys: tuple[str, ...],
    threshold: int,
    decryption_key: str | None,
    trust_recorded_digests: bool,
    key_passwords: tuple[tuple[str, str], ...],
    force: bool,
    json_mode: bool,
    out: Path,
    ignore_paths: tuple[str, ...],
) -> None:
    """Sign the folder `unpack` makes of BUNDLE in OpenSSF model-signing's format.

    BUNDLE is verified first, as unpack verifies it. The signature covers each
    model file's SHA-256 as the signed manifest records it, which is what
    unpack writes, so `model_signing verify key` (the model-signing package)
    accepts the unpacked folder, and refuses it if a file is changed, added or
    missing. model-signing verifies ECDSA on NIST curves only: --sign-key must
    be a P-256 key (aoe-pack keygen --type p256), not Ed25519. An encrypted
    BUNDLE needs --decryption-key, to recompute those digests from the
    plaintext, or --trust-recorded-digests to sign them as recorded (the
    signature cannot say so: model-signing's format has no place for it).

    \b
    Example:
      aoe-pack unpack mnist.aoe --out mnist/ --trusted-key keys/release.pub
      aoe-pack export model-signing mnist.aoe --sign-key keys/release.key \\
          --out mnist.sig
      model_signing verify key mnist/ --signature mnist.sig \\
          --public_key keys/release.pub
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack import api

        key, trusted, dkey = _keys(sign_key, trusted_keys, decryption_key, key_passwords)
        with output.progress(f"verifying {bundle.name}", file_size(bundle)) as progress:
            result = api.export_model_signing(
                bundle=bundle,
                sign_key=key,
                out=out,
                trusted_keys=trusted,
                threshold=threshold,
                decryption_key=dkey,
                trust_recorded_digests=trust_recorded_digests,
                ignore_paths=ignore_paths,
                overwrite=force,
                progress=progress,
            )
        _not_checked(output, result.bundle.plaintext_checked)

    def text() -> None:
        m = result.bundle.manifest
        output.line(
            f"wrote {result.out}: model-signing signature of {len(m.files)} file(s) "
            f"of {m.model.tag} {m.model.version}",
            fg="green",
            bold=True,
        )
        output.line(f"  signed by {result.signature.keyid}")
        output.line("  check the folder `aoe-pack unpack` writes with:")
        output.line(
            f"    model_signing verify key FOLDER --signature {result.out} --public_key PUB"
        )

    output.result(result.to_dict(), text)


@export.command("provenance")
@_common
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The signed statement (default: BUNDLE.intoto.jsonl, beside the bundle).",
)
def provenance(
    bundle: Path,
    sign_key: str,
    trusted_keys: tuple[str, ...],
    threshold: int,
    decryption_key: str | None,
    trust_recorded_digests: bool,
    key_passwords: tuple[tuple[str, str], ...],
    force: bool,
    json_mode: bool,
    out: Path | None,
) -> None:
    """Write BUNDLE's build provenance as SLSA Provenance v1, signed by --sign-key.

    BUNDLE is verified first, as unpack verifies it. The provenance its signed
    manifest records (config, targets, source model digest, converter
    versions, parity) becomes an in-toto Statement v1 whose subjects are the
    bundle file and each model file, in a DSSE envelope on one line of JSON
    (docs/interop.md). Any signing key will do (Ed25519 or P-256). An
    encrypted BUNDLE needs --decryption-key, or --trust-recorded-digests,
    which the statement records (internalParameters.plaintextChecked false).

    \b
    Example:
      aoe-pack export provenance mnist.aoe --sign-key keys/release.key
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack import api

        key, trusted, dkey = _keys(sign_key, trusted_keys, decryption_key, key_passwords)
        with output.progress(f"verifying {bundle.name}", file_size(bundle)) as progress:
            result = api.export_provenance(
                bundle=bundle,
                sign_key=key,
                out=out,
                trusted_keys=trusted,
                threshold=threshold,
                decryption_key=dkey,
                trust_recorded_digests=trust_recorded_digests,
                overwrite=force,
                progress=progress,
            )
        _not_checked(output, result.bundle.plaintext_checked)

    def text() -> None:
        m = result.bundle.manifest
        output.line(
            f"wrote {result.out}: SLSA provenance of {m.model.tag} {m.model.version}",
            fg="green",
            bold=True,
        )
        output.line(f"  signed by {result.keyid}")
        for s in result.statement["subject"]:
            output.line(f"  subject   {s['name']}  sha256:{s['digest']['sha256']}")

    output.result(result.to_dict(), text)
