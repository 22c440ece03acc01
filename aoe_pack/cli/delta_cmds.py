"""``manifest add-delta``: deltas to a release already published (docs/format.md §16)."""

from __future__ import annotations

from typing import Any

import click

from aoe_pack.cli._delta import delta_max_percent_option, delta_sign_key_option, show_delta
from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import (
    decryption_key_option,
    json_option,
    key_password_option,
    key_passwords_by_option,
    load_optional_decryption_key,
    load_signing_keys,
)
from aoe_pack.cli._output import Output
from aoe_pack.cli.manifest_cmds import (
    _commit_text,
    _index_dict,
    _warn_index,
    expires_option,
    parse_duration,
    plain_http_option,
    repo_option,
    sign_key_option,
)


@click.command("add-delta")
@click.argument("tag")
@click.argument("version")
@click.option(
    "--from",
    "from_versions",
    multiple=True,
    required=True,
    metavar="VERSION",
    help="The earlier release devices update from (repeatable).",
)
@repo_option
@sign_key_option
@key_password_option("--sign-key")
@decryption_key_option
@delta_sign_key_option
@delta_max_percent_option
@expires_option
@plain_http_option
@json_option
def add_delta(
    tag: str,
    version: str,
    from_versions: tuple[str, ...],
    repo: str,
    sign_keys: tuple[str, ...],
    key_passwords: tuple[tuple[str, str], ...],
    decryption_key: str | None,
    delta_sign_keys: tuple[str, ...],
    delta_max_percent: int,
    expires: str,
    plain_http: bool | None,
    json_mode: bool,
) -> None:
    """Add deltas from earlier releases of TAG to its published VERSION.

    Both bundles are downloaded and matched against the manifest, verified with
    the keys that signed VERSION's bundle and decrypted with --decryption-key;
    each delta is signed, uploaded as deltas/<sha256>.aoed and recorded in the
    release only if it is smaller than the bundle. A release keeps the first
    delta recorded from each version.

    \b
    Example:
      aoe-pack manifest add-delta tag_mnist 1.1.0 --from 1.0.0 --repo repo/ \\
          --sign-key keys/release.key --decryption-key keys/app.key
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack import api

        passwords = key_passwords_by_option(
            key_passwords,
            {
                "--sign-key": sign_keys,
                "--delta-sign-key": delta_sign_keys,
                "--decryption-key": () if decryption_key is None else (decryption_key,),
            },
        )
        commit, outcomes = api.add_deltas(
            repo=repo,
            tag=tag,
            version=version,
            from_versions=from_versions,
            sign_keys=load_signing_keys(sign_keys, passwords["--sign-key"]),
            decryption_key=load_optional_decryption_key(
                decryption_key, passwords["--decryption-key"]
            ),
            delta_sign_keys=load_signing_keys(delta_sign_keys, passwords["--delta-sign-key"]),
            max_percent=delta_max_percent,
            expires=parse_duration(expires),
            plain_http=plain_http,
        )
    for o in outcomes:
        show_delta(output, o)
    doc: dict[str, Any] = {
        "manifestVersion": commit.manifest.version,
        "changed": commit.attempts != 0,
        **_index_dict(commit),
        "deltas": [o.to_dict() for o in outcomes],
    }
    _warn_index(output, commit)

    def text() -> None:
        recorded = sum(o.ref is not None for o in outcomes)
        if commit.attempts:
            _commit_text(output, commit, f"recorded {recorded} delta(s)")
        else:
            output.line("no delta recorded: the manifest is unchanged")

    output.result(doc, text)
