"""``manifest sign-proposal|inspect-proposal|apply-proposal``: offline ceremonies.

A proposal comes from ``rotate-root --prepare`` or an edit's ``--prepare``;
each key holder signs it on their own machine, and it is installed once
every threshold is met.
"""

from __future__ import annotations

from pathlib import Path

import click

from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import (
    INPUT_FILE,
    json_option,
    key_password_option,
    load_signing_keys,
    read_trusted_root,
)
from aoe_pack.cli._output import Output
from aoe_pack.cli._proposals import next_step, report_text
from aoe_pack.cli.manifest_cmds import plain_http_option, repo_option

proposal_argument = click.argument("proposal", metavar="PROPOSAL", type=INPUT_FILE)
trusted_root_option = click.option(
    "--trusted-root",
    type=INPUT_FILE,
    help="The repository's current root.json, from a source you trust: the proposal must "
    "apply on top of it.",
)


@click.command("sign-proposal")
@proposal_argument
@click.option(
    "--sign-key",
    "sign_key",
    required=True,
    metavar="KEY",
    help="Your root key (path, env://VAR, or a pkcs11:/awskms:// signer): one per run.",
)
@key_password_option("--sign-key")
@trusted_root_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the signed proposal here (default: replace PROPOSAL).",
)
@json_option
def sign_proposal(
    proposal: Path,
    sign_key: str,
    key_passwords: tuple[tuple[str, str], ...],
    trusted_root: Path | None,
    out: Path | None,
    json_mode: bool,
) -> None:
    """Add your signature to a proposal, on your own machine: no repository needed.

    Read `inspect-proposal` first: you sign exactly what it shows. Refused: a
    key the proposal does not need, a key that signed it already, an expired
    proposal, and a proposal on top of a root that neither --trusted-root nor
    your key's own signature vouches for (a key the new root adds always
    needs --trusted-root).

    \b
    Example:
      aoe-pack manifest sign-proposal rotation.json --sign-key keys/alice.key \\
          --trusted-root root.json
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.publish import ceremony

        before = ceremony.read_proposal(proposal)
        trusted = None if trusted_root is None else read_trusted_root(trusted_root)
        (key,) = load_signing_keys((sign_key,), key_passwords)
        signed = ceremony.sign_proposal(before, key, trusted_root=trusted)
        dest = out or proposal
        ceremony.write_proposal(dest, signed, overwrite=True)
        report = ceremony.inspect_proposal(signed)

    def text() -> None:
        output.line(f"signed {dest} with key {key.key_id}", fg="green", bold=True)
        report_text(output, report)
        next_step(output, dest, report)

    output.result({"proposal": str(dest), "keyId": key.key_id, **report.to_dict()}, text)


@click.command("inspect-proposal")
@proposal_argument
@trusted_root_option
@json_option
def inspect_proposal(proposal: Path, trusted_root: Path | None, json_mode: bool) -> None:
    """Show what a proposal changes, who signed it, and how many signatures each root still needs.

    Every signature is verified, and the proposed documents are checked
    against the root and manifest they apply on top of, which --trusted-root
    anchors (without it, the output says the base root was not checked).

    \b
    Example:
      aoe-pack manifest inspect-proposal rotation.json --trusted-root root.json
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.publish import ceremony

        parsed = ceremony.read_proposal(proposal)
        trusted = None if trusted_root is None else read_trusted_root(trusted_root)
        anchored = ceremony.check_base(parsed, trusted_root=trusted)
        report = ceremony.inspect_proposal(parsed)

    def text() -> None:
        output.line(
            f"{proposal}: {'complete' if report.complete else 'below threshold'}", bold=True
        )
        report_text(output, report)
        if not anchored:
            output.warn(
                "the base root was not checked against a root you trust: pass --trusted-root"
            )
        next_step(output, proposal, report)

    payload = {"proposal": str(proposal), "trustedRoot": anchored, **report.to_dict()}
    output.result(payload, text)


@click.command("apply-proposal")
@proposal_argument
@repo_option
@plain_http_option
@json_option
def apply_proposal(proposal: Path, repo: str, plain_http: bool | None, json_mode: bool) -> None:
    """Install a proposal whose every threshold is met, as devices will check it.

    Refused, with nothing written: a proposal below threshold (naming who may
    still sign), one for another repository, and a stale one (the repository
    moved on since it was prepared, or it was installed already). A rotation
    that stopped part-way is finished by applying it again.

    \b
    Example:
      aoe-pack manifest apply-proposal rotation.json --repo s3://models/repo
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.publish import ceremony
        from aoe_pack.storage.open import open_store

        parsed = ceremony.read_proposal(proposal)
        store = open_store(repo, plain_http=plain_http)
        try:
            installed = ceremony.apply_proposal(store, parsed)
        finally:
            store.close()
    if installed.resign_needed:
        output.warn(
            "an edit signed under the old root alone landed during the rotation; devices "
            f"on root version {installed.root.version} refuse it: run `manifest resign` "
            "(or a proposal of it) with the new keys"
        )

    def text() -> None:
        rotated = installed.kind == "rotate-root"
        what = "rotated to root" if rotated else "installed under root"
        output.line(
            f"{what} version {installed.root.version}: manifest version "
            f"{installed.manifest.version}",
            fg="green",
            bold=True,
        )

    output.result(installed.to_dict(), text)
