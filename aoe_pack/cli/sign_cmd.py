"""``sign``: add signatures to a built bundle (a second approver after CI)."""

from __future__ import annotations

from pathlib import Path

import click

from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import (
    BUNDLE_FILE,
    json_option,
    key_password_option,
    load_signing_keys,
    threshold_option,
)
from aoe_pack.cli._output import Output, file_size, human_size


def _hex64(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A SHA-256 in hex, lowercase; a usage error (exit 2) before any key or file is read."""
    if value is not None and (
        len(value) != 64 or not all(c in "0123456789abcdef" for c in value.lower())
    ):
        raise click.BadParameter(f"must be 64 hex digits (a SHA-256), got {value[:80]!r}")
    return None if value is None else value.lower()


@click.command()
@click.argument("bundle", type=BUNDLE_FILE)
@click.option(
    "--sign-key",
    "sign_keys",
    multiple=True,
    required=True,
    metavar="KEY",
    help="Signing private key (ed25519/p256) that has not signed BUNDLE yet: a path or "
    "env://VAR. Repeat for several.",
)
@key_password_option("--sign-key")
@click.option(
    "--trusted-key",
    "trusted_keys",
    multiple=True,
    metavar="PUB",
    help="Public key of an earlier signer: sign only if it signed BUNDLE validly. "
    "Repeat for several.",
)
@threshold_option
@click.option(
    "--expect-manifest-sha256",
    metavar="HEX",
    callback=_hex64,
    help="Sign only if BUNDLE's manifest has this SHA-256: the manifestSha256 that "
    "`aoe-pack inspect` showed whoever approved it. Another bundle is refused, unchanged.",
)
@json_option
def sign(
    bundle: Path,
    sign_keys: tuple[str, ...],
    key_passwords: tuple[tuple[str, str], ...],
    trusted_keys: tuple[str, ...],
    threshold: int,
    expect_manifest_sha256: str | None,
    json_mode: bool,
) -> None:
    """Add signatures to BUNDLE after it is built, e.g. a security review's after CI's.

    BUNDLE is checked first as `verify` checks it without a decryption key:
    its structure, its manifest and every stored byte; with --trusted-key,
    --threshold of those keys must have signed it. Then each --sign-key signs
    the same manifest, and only the end of the file is rewritten, in place
    and under a lock. The result is the bundle a build with all the keys at
    once makes. A run killed midway leaves a journal beside BUNDLE, which the
    next run finishes (run the same command again). A key that signed already,
    and a BUNDLE that is a link, are refused. With --expect-manifest-sha256,
    so is any bundle but the one reviewed.

    \b
    Example:
      aoe-pack sign mnist.aoe --sign-key keys/review.key --trusted-key keys/ci.pub \\
          --expect-manifest-sha256 HEX    # the manifest sha256 `inspect` showed the reviewer
      aoe-pack verify mnist.aoe --trusted-key keys/ci.pub --trusted-key keys/review.pub \\
          --threshold 2
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack import api

        # Loaded before the bar is drawn: a password prompt must not share the line with it.
        keys = load_signing_keys(sign_keys, key_passwords)
        with output.progress(f"checking {bundle.name}", file_size(bundle)) as progress:
            result = api.sign(
                bundle=bundle,
                sign_keys=keys,
                trusted_keys=trusted_keys,
                threshold=threshold,
                expect_manifest_sha256=expect_manifest_sha256,
                progress=progress,
            )
        for note in result.notes:
            output.warn(note)

    def text() -> None:
        m = result.manifest
        output.line(f"signed: {bundle} — {m.model.tag} {m.model.version}", fg="green", bold=True)
        output.line(f"  manifest  sha256:{result.manifest_sha256}")
        for k in result.trusted_signers:
            output.line(f"  checked   {k}")
        for k in result.signers:
            output.line(f"  {'added' if k in result.added else 'signer':<9} {k}")
        output.line(f"  {len(m.files)} file(s), {human_size(result.bytes_checked)} checked")

    output.result(result.to_dict(), text)
