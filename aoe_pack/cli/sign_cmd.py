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
@json_option
def sign(
    bundle: Path,
    sign_keys: tuple[str, ...],
    key_passwords: tuple[tuple[str, str], ...],
    trusted_keys: tuple[str, ...],
    threshold: int,
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
    and a BUNDLE that is a link, are refused.

    \b
    Example:
      aoe-pack sign mnist.aoe --sign-key keys/review.key --trusted-key keys/ci.pub
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
                progress=progress,
            )
        for note in result.notes:
            output.warn(note)

    def text() -> None:
        m = result.manifest
        output.line(f"signed: {bundle} — {m.model.tag} {m.model.version}", fg="green", bold=True)
        for k in result.trusted_signers:
            output.line(f"  checked   {k}")
        for k in result.signers:
            output.line(f"  {'added' if k in result.added else 'signer':<9} {k}")
        output.line(f"  {len(m.files)} file(s), {human_size(result.bytes_checked)} checked")

    output.result(result.to_dict(), text)
