"""``build``, ``verify``, ``inspect`` and ``unpack``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import (
    BUNDLE_FILE,
    decryption_key_option,
    json_option,
    key_password_option,
    load_verification_keys,
    threshold_option,
    trusted_key_option,
)
from aoe_pack.cli._output import Output, file_size, human_size
from aoe_pack.cli._targets import show_provenance_targets


@click.command()
@click.argument("bundle", type=BUNDLE_FILE)
@trusted_key_option
@threshold_option
@decryption_key_option
@key_password_option("--decryption-key")
@json_option
def verify(
    bundle: Path,
    trusted_keys: tuple[str, ...],
    threshold: int,
    decryption_key: str | None,
    key_passwords: tuple[tuple[str, str], ...],
    json_mode: bool,
) -> None:
    """Check BUNDLE's signatures and every byte; exit 0 only if all is well.

    \b
    Without a key it proves that what was shipped is what was signed. With
    --decryption-key it also decrypts (streaming, no plaintext file) and checks
    the model against the digest recorded at build time.
    Exit codes: 0 verified, 1 not verified, 2 the command line is wrong.

    \b
    Example:
      aoe-pack verify mnist.aoe --trusted-key keys/release.pub
      aoe-pack verify mnist.aoe --trusted-key keys/release.pub --decryption-key keys/app.key
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack import api

        # Loaded before the bar is drawn: a password prompt must not share the line with it.
        trusted, dkey = load_verification_keys(trusted_keys, decryption_key, key_passwords)
        with output.progress(f"verifying {bundle.name}", file_size(bundle)) as progress:
            result = api.verify(
                bundle=bundle,
                trusted_keys=trusted,
                threshold=threshold,
                decryption_key=dkey,
                progress=progress,
            )
        for note in result.notes:
            output.warn(note)

    def text() -> None:
        m = result.manifest
        what = "verified and decrypted" if result.decrypted else "verified"
        output.line(f"{what}: {bundle} — {m.model.tag} {m.model.version}", fg="green", bold=True)
        output.line(f"  manifest  sha256:{result.manifest_sha256}")
        good = [s.keyid for s in result.signatures if s.valid]
        output.line(f"  {len(good)} trusted signature(s) (threshold {threshold})")
        for k in good:
            output.line(f"  signed by {k}")
        output.line(f"  {len(m.files)} file(s), {human_size(result.bytes_checked)} checked")

    output.result(result.to_dict(), text)


@click.command()
@click.argument("bundle", type=BUNDLE_FILE)
@json_option
def inspect(bundle: Path, json_mode: bool) -> None:
    """Show what BUNDLE says about itself, without any key.

    Identity, files and sizes, signers' key ids, encryption recipients and
    provenance, and the repository address devices look for updates at (the
    config's updateURL, "updates" in the text; model.updateURL in --json),
    when the config gave one. Nothing shown is verified: run `aoe-pack
    verify` for that.

    \b
    Example:
      aoe-pack inspect mnist.aoe
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack import api

        result = api.inspect(bundle=bundle)

    def text() -> None:
        d = result.to_dict()
        m = result.manifest
        output.line(f"{bundle}  ({human_size(result.size)}, {d['format']}, unverified)", bold=True)
        output.line(f"  model     {m.model.tag} {m.model.version}  runtime {m.model.runtime}")
        if m.model.update_url is not None:
            output.line(f"  updates   {m.model.update_url}")
        output.line(f"  manifest  sha256:{result.manifest_sha256}")
        width = max(len(f.path) for f in m.files)
        for f in m.files:
            enc = "encrypted" if f.encrypted else "plain"
            output.line(
                f"  file      {f.path:<{width}}  {f.role:<7} {human_size(f.size):>10}  "
                f"{enc:<9}  sha256:{f.sha256}"
            )
        for k in result.signer_keyids:
            output.line(f"  signer    {k}")
        if m.encryption:
            for r in m.encryption.recipients:
                output.line(f"  recipient {r.keyid}  ({r.type}{', ' + r.kem if r.kem else ''})")
        else:
            output.line("  recipient none (not encrypted)")
        show_provenance_targets(output, m.provenance)
        prov = m.provenance
        output.line(
            f"  built by  {_said(prov, 'builder', 'name')} {_said(prov, 'builder', 'version')}"
        )
        if prov.get("source"):
            source = f"{_said(prov, 'source', 'path')} sha256:{_said(prov, 'source', 'sha256')}"
            output.line(f"  source    {source}")
        tools = prov.get("tools")
        for tool, ver in sorted(tools.items() if isinstance(tools, dict) else ()):
            output.line(f"  tool      {tool} {ver}")

    output.result(result.to_dict(), text)


def _said(provenance: Mapping[str, Any], block: str, key: str) -> str:
    """A provenance field as text, "unknown" if absent: provenance is free-form and unverified."""
    fields = provenance.get(block)
    value = fields.get(key) if isinstance(fields, Mapping) else None
    return "unknown" if value is None else str(value)


@click.command()
@click.argument("bundle", type=BUNDLE_FILE)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the model files into (created if missing).",
)
@trusted_key_option
@threshold_option
@decryption_key_option
@key_password_option("--decryption-key")
@click.option("--force", is_flag=True, help="Replace files that already exist in --out.")
@json_option
def unpack(
    bundle: Path,
    out: Path,
    trusted_keys: tuple[str, ...],
    threshold: int,
    decryption_key: str | None,
    key_passwords: tuple[tuple[str, str], ...],
    force: bool,
    json_mode: bool,
) -> None:
    """Verify BUNDLE, then write its model files into --out.

    Files appear only once every byte verified; nothing is ever written outside
    --out, symlinks are never followed, and a failure leaves no partial file.

    \b
    Example:
      aoe-pack unpack mnist.aoe --out model/ --trusted-key keys/release.pub \\
          --decryption-key keys/app.key
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack import api

        # Loaded before the bar is drawn: a password prompt must not share the line with it.
        trusted, dkey = load_verification_keys(trusted_keys, decryption_key, key_passwords)
        with output.progress(f"unpacking {bundle.name}", file_size(bundle)) as progress:
            result = api.unpack(
                bundle=bundle,
                out=out,
                trusted_keys=trusted,
                threshold=threshold,
                decryption_key=dkey,
                force=force,
                progress=progress,
            )

    def text() -> None:
        output.line(f"unpacked {bundle} into {out}", fg="green", bold=True)
        for p in result.written:
            output.line(f"  {p}")

    output.result(result.to_dict(), text)
