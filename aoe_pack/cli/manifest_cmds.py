"""``manifest init|publish|show|yank|rollout|pin|resign|rotate-root|verify``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aoe_pack.cli._delta import delta_options, show_delta
from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import (
    INPUT_FILE,
    NumberArgumentsCommand,
    json_option,
    key_password_option,
    key_passwords_by_option,
    load_optional_decryption_key,
    load_signing_keys,
    read_trusted_root,
    timeout_option,
)
from aoe_pack.cli._output import Output
from aoe_pack.cli._proposals import check_mode, prepare_options, save, show_prepared
from aoe_pack.errors import UsageError

if TYPE_CHECKING:
    from aoe_pack.publish.deltas import DeltaOutcome

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``2w``, ``1d12h``: how long a manifest stays valid."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"--expires {text!r} is not a duration", hint="e.g. 30d, 12h, 2w, 1d12h")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if not 60 <= seconds <= 366 * 86400:
        raise UsageError("--expires must be between 1 minute and 366 days")
    return dt.timedelta(seconds=seconds)


repo_option = click.option(
    "--repo",
    required=True,
    metavar="DEST",
    help="The repository: a folder, s3://bucket/prefix (any fsspec URL), or oci://host/repo.",
)
sign_key_option = click.option(
    "--sign-key",
    "sign_keys",
    multiple=True,
    required=True,
    metavar="KEY",
    help="A manifest-signing private key listed in the root (path, env://VAR, pkcs11:... or "
    "awskms://...: docs/keys.md). Repeat to reach the root's threshold.",
)
edit_sign_key_option = click.option(
    "--sign-key",
    "sign_keys",
    multiple=True,
    metavar="KEY",
    help="A manifest-signing private key listed in the root (path, env://VAR, pkcs11:... or "
    "awskms://...). Repeat to reach the root's threshold; or --prepare a proposal instead.",
)
expires_option = click.option(
    "--expires",
    default="30d",
    show_default=True,
    metavar="DURATION",
    help="How long the new manifest stays valid; devices refuse it afterwards (30d, 12h, 2w).",
)
plain_http_option = click.option(
    "--plain-http",
    is_flag=True,
    default=None,
    help="Talk HTTP, not HTTPS, to an oci:// registry (the default for loopback hosts).",
)


def _store(repo: str, plain_http: bool | None, timeout: float | None = None) -> Any:
    from aoe_pack.storage.open import open_store

    return open_store(repo, plain_http=plain_http, timeout=timeout)


def _commit_text(output: Output, commit: Any, what: str) -> None:
    m = commit.manifest
    expires = m.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    output.line(f"{what}: manifest version {m.version}", fg="green", bold=True)
    output.line(f"  expires  {expires}")
    if commit.attempts > 1:
        output.line(f"  retried  {commit.attempts - 1} time(s) after other publishers wrote first")


def _commit_dict(commit: Any) -> dict[str, Any]:
    return {
        "manifestVersion": commit.manifest.version,
        "expires": commit.manifest.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "attempts": commit.attempts,
        **_index_dict(commit),
    }


def _index_dict(commit: Any) -> dict[str, Any]:
    """The ``index`` member of a commit's ``--json`` result (absent when nothing was written)."""
    return {"index": commit.index.to_dict()} if commit.index is not None else {}


def _warn_index(output: Output, commit: Any) -> None:
    """Warn (text and --json alike, on stderr) when the commit's index was not written."""
    if commit.index is not None and commit.index.warning:
        output.warn(commit.index.warning)


@click.group()
def manifest() -> None:
    """Keep a repository's signed manifest: publish, roll out, yank, pin, verify.

    \b
    A repository is a folder (a static site), an object store or an OCI registry:
      root.json, roots/N.root.json   trusted manifest keys and threshold
      manifest.json                  signed releases (DSSE); version only grows
      bundles/<sha256>.aoe           immutable, content-addressed bundles
    Example:
      aoe-pack manifest init --repo repo/ --root-key keys/release.pub --sign-key keys/release.key
      aoe-pack manifest publish model.aoe --repo repo/ --sign-key keys/release.key --rollout 10
      aoe-pack manifest rollout --repo repo/ tag_mnist 1.1.0 50 --sign-key keys/release.key
      aoe-pack manifest yank --repo repo/ tag_mnist 1.1.0 --reason "bad accuracy" --sign-key ...
    Offline keys (a threshold of holders, each on their own machine):
      aoe-pack manifest rotate-root --repo repo/ --root-key ... --prepare --out p.json
      aoe-pack manifest sign-proposal p.json --sign-key keys/alice.key   # each holder
      aoe-pack manifest apply-proposal p.json --repo repo/
    """


@manifest.command()
@repo_option
@click.option(
    "--root-key",
    "root_keys",
    multiple=True,
    required=True,
    metavar="PUB",
    help="Public key trusted to sign the manifest (ed25519/p256). Repeat for several.",
)
@click.option(
    "--threshold",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many of the root keys must sign each manifest (and the next root).",
)
@sign_key_option
@key_password_option("--sign-key")
@expires_option
@plain_http_option
@json_option
def init(
    repo: str,
    root_keys: tuple[str, ...],
    threshold: int,
    sign_keys: tuple[str, ...],
    key_passwords: tuple[tuple[str, str], ...],
    expires: str,
    plain_http: bool | None,
    json_mode: bool,
) -> None:
    """Create a repository: root version 1 and an empty manifest.

    The root must be signed by THRESHOLD of its own keys, so pass that many
    --sign-key. Ship root.json inside the app: it is the device's --trusted-root.

    \b
    Example:
      aoe-pack manifest init --repo repo/ --root-key keys/release.pub \\
          --sign-key keys/release.key
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack import api

        root = api.init_repository(
            repo=repo,
            root_keys=root_keys,
            sign_keys=load_signing_keys(sign_keys, key_passwords),
            threshold=threshold,
            expires=parse_duration(expires),
            plain_http=plain_http,
        )
    payload = {
        "repo": repo,
        "rootVersion": root.version,
        "keys": sorted(root.keys),
        "threshold": threshold,
    }

    def text() -> None:
        output.line(f"initialised {repo}", fg="green", bold=True)
        output.line(f"  root     version 1, {threshold} of {len(root.keys)} key(s)")
        for kid in sorted(root.keys):
            output.line(f"  key      {kid}")
        output.line("  ship root.json with the app; devices pass it as --trusted-root")

    output.result(payload, text)


@manifest.command()
@click.argument("bundles", nargs=-1, required=True, type=INPUT_FILE)
@repo_option
@edit_sign_key_option
@key_password_option("--sign-key")
@prepare_options
@click.option(
    "--trusted-key",
    "trusted_keys",
    multiple=True,
    metavar="PUB",
    help="Signer key bundles must be signed by (default: the --sign-key keys; with "
    "--prepare, the root's keys).",
)
@click.option("--channel", default="stable", show_default=True, help="Release channel.")
@click.option(
    "--rollout",
    "rollout",
    type=click.FloatRange(0, 100),
    default=100.0,
    show_default=True,
    metavar="PCT",
    help="Share of devices (0-100, two decimals) that get it; widen later with `rollout`.",
)
@click.option("--min-app-version", metavar="V", help="Oldest app version that may run it.")
@click.option("--max-app-version", metavar="V", help="Newest app version that may run it.")
@click.option(
    "--require-runtime",
    "required_runtimes",
    multiple=True,
    metavar="RUNTIME",
    help="A runtime the device must have (repeat).",
)
@click.option("--critical", is_flag=True, help="Every eligible device gets it, rollout aside.")
@delta_options
@click.option(
    "--public-url",
    metavar="URL",
    help="The https:// address devices read this repository at. Refuses, before any "
    "upload, a bundle whose updateURL (from its config, signed) names another repository; "
    "bundles without one pass. Compared with scheme and host case, a default port and a "
    "trailing / ignored.",
)
@expires_option
@plain_http_option
@json_option
def publish(
    bundles: tuple[Path, ...],
    repo: str,
    sign_keys: tuple[str, ...],
    key_passwords: tuple[tuple[str, str], ...],
    prepare: bool,
    out: Path | None,
    trusted_keys: tuple[str, ...],
    channel: str,
    rollout: float,
    min_app_version: str | None,
    max_app_version: str | None,
    required_runtimes: tuple[str, ...],
    critical: bool,
    delta_from: tuple[str, ...],
    decryption_key: str | None,
    delta_sign_keys: tuple[str, ...],
    delta_max_percent: int,
    public_url: str | None,
    expires: str,
    plain_http: bool | None,
    json_mode: bool,
) -> None:
    """Verify bundles, upload them by digest, and add them to the manifest.

    Each bundle is verified first, uploaded as bundles/<sha256>.aoe, and only
    then named by a new manifest version, written with compare-and-swap (so
    concurrent publishers never lose a release). Publishing the same bundle
    again changes nothing; a different bundle for a published version is refused.

    With --delta-from VERSION, a delta from that release to this bundle is made
    (both decrypted with --decryption-key), uploaded as deltas/<sha256>.aoed and
    recorded in the new release if it is smaller than the bundle; devices that
    run VERSION then download it instead (docs/format.md §16).
    With --public-url (the address devices read, where the storage is served),
    a bundle built with an updateURL naming another repository is refused:
    apps shipping it would never find its updates here.

    \b
    Example:
      aoe-pack manifest publish mnist.aoe --repo repo/ --sign-key keys/release.key \\
          --rollout 10
      aoe-pack manifest publish mnist-1.1.0.aoe --repo repo/ --sign-key keys/release.key \\
          --delta-from 1.0.0 --decryption-key keys/app.key
      aoe-pack manifest publish mnist.aoe --repo s3://models-bucket/repo \\
          --public-url https://models.example.com/repo/ --sign-key keys/release.key
      aoe-pack manifest publish mnist.aoe --repo repo/ --prepare --out publish.json
    """
    output = Output(json_mode)
    if prepare and delta_from:
        raise click.UsageError("--delta-from cannot be combined with --prepare (yet)")
    if prepare:
        _prepare_publish(
            output,
            bundles,
            repo,
            out,
            trusted_keys,
            plain_http,
            json_mode,
            channel=channel,
            rollout=rollout,
            min_app_version=min_app_version,
            max_app_version=max_app_version,
            required_runtimes=required_runtimes,
            critical=critical,
            expires=expires,
            public_url=public_url,
        )
        return
    with handle_errors(json_mode):
        check_mode(sign_keys, prepare=prepare, out=out)
        from aoe_pack import api
        from aoe_pack.publish.address import check_public_url

        if public_url is not None:
            check_public_url(public_url)  # a usage error, before any key is loaded

        passwords = key_passwords_by_option(
            key_passwords,
            {
                "--sign-key": sign_keys,
                "--delta-sign-key": delta_sign_keys,
                "--decryption-key": () if decryption_key is None else (decryption_key,),
            },
        )
        outcomes: list[dict[str, Any]] = []

        def on_delta(o: DeltaOutcome) -> None:
            outcomes.append(o.to_dict())
            show_delta(output, o)

        published = api.publish(
            bundles=bundles,
            repo=repo,
            sign_keys=load_signing_keys(sign_keys, passwords["--sign-key"]),
            trusted_keys=trusted_keys,
            channel=channel,
            rollout=rollout,
            min_app_version=min_app_version,
            max_app_version=max_app_version,
            required_runtimes=required_runtimes,
            critical=critical,
            expires=parse_duration(expires),
            plain_http=plain_http,
            on_upload=lambda p, tag, r: output.info(f"uploaded {p.name} as {r.url}"),
            delta_from=delta_from,
            decryption_key=load_optional_decryption_key(
                decryption_key, passwords["--decryption-key"]
            ),
            delta_sign_keys=load_signing_keys(delta_sign_keys, passwords["--delta-sign-key"]),
            delta_max_percent=delta_max_percent,
            on_delta=on_delta,
            public_url=public_url,
        )
    commit, added, unchanged = published.commit, published.releases, not published.changed
    _warn_index(output, commit)
    for tag, r in published.kept_first_settings():
        output.warn(
            f"{tag} {r.version} was already published and keeps its first settings "
            f"({r.channel}, {r.rollout_percent:g}%); change them with `manifest rollout` "
            "or by publishing a new version"
        )

    def text() -> None:
        what = "already published, nothing changed" if unchanged else "published"
        _commit_text(output, commit, f"{what}: {len(added)} release(s)")
        for tag, r in added:
            output.line(
                f"  {tag} {r.version}  {r.channel}  {r.rollout_percent:g}%  "
                f"{', '.join(r.runtimes)}  {r.url}"
            )

    doc = published.to_dict()
    if delta_from:
        doc["deltas"] = outcomes
    output.result(doc, text)


def _prepare_publish(
    output: Output,
    bundles: tuple[Path, ...],
    repo: str,
    out: Path | None,
    trusted_keys: tuple[str, ...],
    plain_http: bool | None,
    json_mode: bool,
    *,
    channel: str,
    rollout: float,
    min_app_version: str | None,
    max_app_version: str | None,
    required_runtimes: tuple[str, ...],
    critical: bool,
    expires: str,
    public_url: str | None,
) -> None:
    """``publish --prepare``: upload the bundles, propose the manifest that names them."""
    with handle_errors(json_mode):
        check_mode((), prepare=True, out=out)
        assert out is not None
        from aoe_pack.keys import load_public_key
        from aoe_pack.publish import releases
        from aoe_pack.publish.address import check_public_url, check_update_urls

        if public_url is not None:
            check_public_url(public_url)

        options = releases.ReleaseOptions(
            channel=channel,
            rollout_bp=releases.percent_to_bp(rollout),
            min_app_version=min_app_version,
            max_app_version=max_app_version,
            required_runtimes=tuple(sorted(set(required_runtimes))),
            critical=critical,
        )
        keys = [load_public_key(k) for k in trusted_keys]
        if public_url is not None:
            check_update_urls(bundles, public_url)  # before anything is uploaded
        store = _store(repo, plain_http)
        try:
            proposal, _ = releases.prepare_publish(
                store,
                bundles,
                trusted_keys=keys,
                options=options,
                expires=parse_duration(expires),
                on_bundle=lambda p, tag, r: output.info(f"uploaded {p.name} as {r.url}"),
            )
        finally:
            store.close()
        report = save(out, proposal)
    show_prepared(output, out, report)


@manifest.command()
@repo_option
@plain_http_option
@timeout_option
@json_option
def show(repo: str, plain_http: bool | None, timeout: float | None, json_mode: bool) -> None:
    """List every model's releases: version, channel, rollout, yanked.

    \b
    Example:
      aoe-pack manifest show --repo repo/
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.publish.split import index_version
        from aoe_pack.publish.workflow import read_state

        store = _store(repo, plain_http, timeout)
        state = read_state(store)
        indexed = index_version(store, state.root)
        store.close()
    m = state.manifest
    expired = m.expires <= dt.datetime.now(dt.UTC)
    payload = {
        "repo": repo,
        "rootVersion": state.root.version,
        "manifestVersion": m.version,
        "expired": expired,
        "indexVersion": indexed,
        **m.to_dict(),
    }

    def text() -> None:
        output.line(
            f"{repo}: manifest version {m.version}, expires "
            f"{m.expires.strftime('%Y-%m-%dT%H:%M:%SZ')}, root version {state.root.version}",
            bold=True,
        )
        if expired:
            output.warn("the manifest has EXPIRED: devices refuse it; run `manifest resign`")
        if indexed != m.version:
            output.warn(
                f"index.json is {'absent' if indexed is None else f'at version {indexed}'}: "
                "devices that read it see an older repository; `manifest resign` writes it"
            )
        for tag, entry in sorted(m.models.items()):
            pin = f"  (pinned to {entry.pin})" if entry.pin else ""
            output.line(f"\n{tag}{pin}", bold=True)
            output.line(f"  {'version':<14}{'code':>11}  {'channel':<8}{'rollout':>8}  status")
            for r in reversed(entry.releases):
                status = f"YANKED: {r.yanked}" if r.yanked else ("critical" if r.critical else "")
                output.line(
                    f"  {r.version:<14}{r.version_code:>11}  {r.channel:<8}"
                    f"{r.rollout_percent:>7g}%  {status}"
                )
        if not m.models:
            output.line("  no releases yet")

    output.result(payload, text)


def _edit_command(
    json_mode: bool,
    what: str,
    repo: str,
    plain_http: bool | None,
    sign_keys: tuple[str, ...],
    key_passwords: tuple[tuple[str, str], ...],
    expires: str,
    edit: Callable[[], Any],
    prepare: bool = False,
    out: Path | None = None,
) -> None:
    """Run one manifest edit (``edit()`` makes it) and report the commit, or --prepare it."""
    output = Output(json_mode)
    with handle_errors(json_mode):
        check_mode(sign_keys, prepare=prepare, out=out)
        from aoe_pack.publish.ceremony import prepare_edit
        from aoe_pack.publish.workflow import edit_repository

        change = edit()
        store = _store(repo, plain_http)
        try:
            if out is not None:
                report = save(out, prepare_edit(store, change, expires=parse_duration(expires)))
            else:
                commit = edit_repository(
                    store,
                    change,
                    sign_keys=load_signing_keys(sign_keys, key_passwords),
                    expires=parse_duration(expires),
                )
        finally:
            store.close()
    if out is not None:
        show_prepared(output, out, report)
        return
    _warn_index(output, commit)
    output.result(_commit_dict(commit), lambda: _commit_text(output, commit, what))


@manifest.command()
@repo_option
@click.argument("tag")
@click.argument("version")
@click.option("--reason", required=True, help="Why; devices report it when they fall back.")
@click.option(
    "--update-reason",
    is_flag=True,
    help="Replace the reason of a release that is already yanked (refused without it).",
)
@edit_sign_key_option
@key_password_option("--sign-key")
@prepare_options
@expires_option
@plain_http_option
@json_option
def yank(
    repo: str,
    tag: str,
    version: str,
    reason: str,
    update_reason: bool,
    sign_keys: tuple[str, ...],
    key_passwords: tuple[tuple[str, str], ...],
    prepare: bool,
    out: Path | None,
    expires: str,
    plain_http: bool | None,
    json_mode: bool,
) -> None:
    """Withdraw a release: no device downloads it, and devices running it fall back.

    A yank cannot be undone: publish a new version instead of the withdrawn one.

    \b
    Example:
      aoe-pack manifest yank --repo repo/ tag_mnist 1.2.0 --reason "bad accuracy" \\
          --sign-key keys/release.key
      aoe-pack manifest yank --repo repo/ tag_mnist 1.2.0 --reason "bad accuracy" \\
          --prepare --out yank.json
    """
    from aoe_pack.publish import releases

    _edit_command(
        json_mode,
        f"yanked {tag} {version}",
        repo,
        plain_http,
        sign_keys,
        key_passwords,
        expires,
        lambda: releases.yank_edit(tag, version, reason=reason, update_reason=update_reason),
        prepare,
        out,
    )


@manifest.command(cls=NumberArgumentsCommand)
@repo_option
@click.argument("tag")
@click.argument("version")
@click.argument("percent", type=click.FloatRange(0, 100), metavar="PCT")
@edit_sign_key_option
@key_password_option("--sign-key")
@prepare_options
@expires_option
@plain_http_option
@json_option
def rollout(
    repo: str,
    tag: str,
    version: str,
    percent: float,
    sign_keys: tuple[str, ...],
    key_passwords: tuple[tuple[str, str], ...],
    prepare: bool,
    out: Path | None,
    expires: str,
    plain_http: bool | None,
    json_mode: bool,
) -> None:
    """Widen or narrow a release's rollout to PCT percent of devices.

    Devices already in stay in as it grows. Narrowing stops new downloads but
    takes nothing away; yank does that. A yanked release is refused.

    \b
    Example:
      aoe-pack manifest rollout --repo repo/ tag_mnist 1.2.0 50 --sign-key keys/release.key
      aoe-pack manifest rollout --repo repo/ tag_mnist 1.2.0 50 --prepare --out rollout.json
    """
    from aoe_pack.publish import releases

    _edit_command(
        json_mode,
        f"{tag} {version} now rolls out to {percent:g}%",
        repo,
        plain_http,
        sign_keys,
        key_passwords,
        expires,
        lambda: releases.rollout_edit(tag, version, percent),
        prepare,
        out,
    )


@manifest.command()
@repo_option
@click.argument("tag")
@click.argument("target", metavar="VERSION|local|none")
@edit_sign_key_option
@key_password_option("--sign-key")
@prepare_options
@expires_option
@plain_http_option
@json_option
def pin(
    repo: str,
    tag: str,
    target: str,
    sign_keys: tuple[str, ...],
    key_passwords: tuple[tuple[str, str], ...],
    prepare: bool,
    out: Path | None,
    expires: str,
    plain_http: bool | None,
    json_mode: bool,
) -> None:
    """Pin every device to one release, to `local` (kill switch), or `none` to unpin.

    \b
    Example:
      aoe-pack manifest pin --repo repo/ tag_mnist local --sign-key keys/release.key
      aoe-pack manifest pin --repo repo/ tag_mnist none --sign-key keys/release.key
      aoe-pack manifest pin --repo repo/ tag_mnist local --prepare --out kill.json
    """
    from aoe_pack.publish import releases

    pinned = None if target == "none" else target
    _edit_command(
        json_mode,
        f"{tag} pinned to {target}",
        repo,
        plain_http,
        sign_keys,
        key_passwords,
        expires,
        lambda: releases.pin_edit(tag, pinned),
        prepare,
        out,
    )


@manifest.command()
@repo_option
@edit_sign_key_option
@key_password_option("--sign-key")
@prepare_options
@expires_option
@plain_http_option
@json_option
def resign(
    repo: str,
    sign_keys: tuple[str, ...],
    key_passwords: tuple[tuple[str, str], ...],
    prepare: bool,
    out: Path | None,
    expires: str,
    plain_http: bool | None,
    json_mode: bool,
) -> None:
    """Re-sign the manifest with a fresh expiry (run it on a schedule).

    \b
    Example:
      aoe-pack manifest resign --repo repo/ --sign-key keys/release.key --expires 30d
      aoe-pack manifest resign --repo repo/ --prepare --out resign.json --expires 30d
    """
    from aoe_pack.publish import releases

    _edit_command(
        json_mode,
        "re-signed",
        repo,
        plain_http,
        sign_keys,
        key_passwords,
        expires,
        lambda: releases.resign_edit,
        prepare,
        out,
    )


@manifest.command("rotate-root")
@repo_option
@click.option(
    "--root-key",
    "root_keys",
    multiple=True,
    required=True,
    metavar="PUB",
    help="A key of the NEW root (repeat).",
)
@click.option(
    "--threshold",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Signatures the new root requires.",
)
@click.option(
    "--sign-key",
    "sign_keys",
    multiple=True,
    metavar="KEY",
    help="Old and new root keys: a threshold of each must sign (repeat); or --prepare "
    "a proposal for the key holders to sign apart.",
)
@key_password_option("--sign-key")
@prepare_options
@click.option(
    "--restart-manifest-version",
    "restart",
    is_flag=True,
    help="Start the manifest again at version 1: the way out after a stolen key signed a "
    "manifest at a huge version. Only with new keys that revoke the old ones (fewer than "
    "the threshold kept), so that devices drop the floor the old keys set.",
)
@expires_option
@plain_http_option
@json_option
def rotate_root(
    repo: str,
    root_keys: tuple[str, ...],
    threshold: int,
    sign_keys: tuple[str, ...],
    key_passwords: tuple[tuple[str, str], ...],
    prepare: bool,
    out: Path | None,
    restart: bool,
    expires: str,
    plain_http: bool | None,
    json_mode: bool,
) -> None:
    """Replace the manifest keys with a new root version N+1.

    Root N+1 must be signed by a threshold of root N's keys and a threshold of
    its own, so pass --sign-key for both; devices walk roots/N.root.json one
    version at a time and refuse a root that is not. The manifest is re-signed
    under both roots first, so devices accept it before and after the switch.

    With --prepare, nothing is signed: the new root and the manifest that
    bridges the two roots are written to a proposal file (--out), which each
    key holder signs on their own machine (`manifest sign-proposal`) and which
    `manifest apply-proposal` installs once every threshold is met.

    \b
    Example:
      aoe-pack manifest rotate-root --repo repo/ --root-key keys/new.pub \\
          --sign-key keys/release.key --sign-key keys/new.key
      aoe-pack manifest rotate-root --repo repo/ --root-key a.pub --root-key b.pub \\
          --root-key c.pub --threshold 2 --prepare --out rotation.json
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        check_mode(sign_keys, prepare=prepare, out=out)
        from aoe_pack.keys import load_public_key
        from aoe_pack.publish.ceremony import prepare_rotation
        from aoe_pack.publish.workflow import rotate_root as _rotate

        new_keys = [load_public_key(k) for k in root_keys]
        store = _store(repo, plain_http)
        try:
            if out is not None:
                report = save(
                    out,
                    prepare_rotation(
                        store,
                        new_keys=new_keys,
                        threshold=threshold,
                        expires=parse_duration(expires),
                        restart_manifest_version=restart,
                    ),
                )
            else:
                root = _rotate(
                    store,
                    new_keys=new_keys,
                    threshold=threshold,
                    sign_keys=load_signing_keys(sign_keys, key_passwords),
                    expires=parse_duration(expires),
                    restart_manifest_version=restart,
                    warn=output.warn,
                )
        finally:
            store.close()
    if out is not None:
        show_prepared(output, out, report)
        return
    payload = {"rootVersion": root.version, "keys": sorted(root.keys), "threshold": root.threshold}
    output.result(
        payload,
        lambda: output.line(f"manifest re-signed; root version {root.version} written", fg="green"),
    )


@manifest.command("verify")
@repo_option
@click.option(
    "--trusted-root",
    required=True,
    type=INPUT_FILE,
    help="The root the devices ship with (root.json of version 1, or later).",
)
@click.option(
    "--bundles",
    "check_bundles",
    is_flag=True,
    help="Also check every bundle is uploaded with its size (and download and hash it).",
)
@plain_http_option
@timeout_option
@json_option
def verify_repo(
    repo: str,
    trusted_root: Path,
    check_bundles: bool,
    plain_http: bool | None,
    timeout: float | None,
    json_mode: bool,
) -> None:
    """Check a repository exactly as a device would: root chain, signatures, expiry.

    \b
    Example:
      aoe-pack manifest verify --repo repo/ --trusted-root repo/root.json --bundles
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack.client.verify_repo import verify_repository

        root = read_trusted_root(trusted_root)
        store = _store(repo, plain_http, timeout)
        report = verify_repository(store, root, check_bundles=check_bundles)
        store.close()

    def text() -> None:
        output.line(f"verified {repo}", fg="green", bold=True)
        output.line(f"  root      version {report.root_version}")
        m = report.manifest
        output.line(f"  manifest  version {m.version}, {m.release_count()} release(s)")
        idx = report.index
        where = f"version {idx.version}, " if idx.version else ""
        output.line(f"  index     {where}{idx.status}, {idx.tags_checked} tag document(s)")
        if check_bundles:
            output.line(f"  bundles   {report.bundles_checked} present and matching")

    output.result(report.to_dict(), text)
