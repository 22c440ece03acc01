"""``client check`` and ``client simulate``: the device side, for real and in bulk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from aoe_pack._jcs import MAX_SAFE_INTEGER
from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import (
    INPUT_FILE,
    decryption_key_option,
    json_option,
    key_password_option,
    load_optional_decryption_key,
    read_trusted_root,
    timeout_option,
)
from aoe_pack.cli._output import Output

ALL_RUNTIMES = ("tflite", "onnx", "ort", "mnn", "ncnn")

_device_options = [
    click.option("--tag", required=True, help="The model tag the app uses."),
    click.option("--app-version", required=True, metavar="A", help="The app's version (semver)."),
    click.option(
        "--runtime",
        "runtimes",
        multiple=True,
        metavar="RUNTIME",
        help=f"A runtime the device has (repeat; default: {', '.join(ALL_RUNTIMES)}).",
    ),
    click.option(
        "--channel",
        "channels",
        multiple=True,
        metavar="C",
        help="Channel the device follows (repeat; default: stable).",
    ),
    click.option(
        "--trusted-root",
        required=True,
        type=INPUT_FILE,
        help="The root.json shipped with the app.",
    ),
]
_REPO_HELP = "Repository URL (http(s)://, a folder, s3://, oci://)."
_repo_option = click.option("--repo", required=True, metavar="URL", help=_REPO_HELP)


# The reference's deadline (TransferLimits.deadline), written out to keep the CLI light.
def _open_repo(repo: str, plain_http: bool | None, timeout: float | None) -> Any:
    from aoe_pack.storage.open import open_store

    return open_store(repo, plain_http=plain_http, timeout=timeout)


def device_options(f: Any) -> Any:
    for option in reversed(_device_options):
        f = option(f)
    return f


def _device(
    device_id: str,
    app_version: str,
    runtimes: tuple[str, ...],
    channels: tuple[str, ...],
    local_version: str,
    installed_version: str | None,
) -> Any:
    from aoe_pack.client.decide import Device
    from aoe_pack.errors import UsageError
    from aoe_pack.publish.names import check_channel, check_runtime, cli_version

    # The installed version first: without --local-version it stands for both,
    # and a mistake in it must be named as the option the user typed.
    if installed_version:
        cli_version(installed_version, "--installed-version")
    for text, what in ((app_version, "--app-version"), (local_version, "--local-version")):
        cli_version(text, what)
    if not device_id.strip():
        raise UsageError(
            "--device-id is empty: every device would fall in the same rollout bucket",
            hint="pass a stable per-install id (e.g. a random UUID kept by the app)",
        )
    for channel in channels:  # the names publish accepts, so a typo cannot silently match none
        check_channel(channel)
    for runtime in runtimes:
        check_runtime(runtime, "--runtime")
    return Device(
        device_id=device_id,
        app_version=app_version,
        runtimes=frozenset(runtimes or ALL_RUNTIMES),
        channels=channels or ("stable",),
        local_version=local_version,
        installed_version=(
            installed_version if installed_version and installed_version != local_version else None
        ),
    )


@click.group()
def client() -> None:
    """The device side of updates: the reference flow Android and iOS follow.

    \b
    Example:
      aoe-pack client check --repo repo/ --trusted-root repo/root.json --tag tag_mnist \\
          --installed-version 1.0.0 --app-version 3.0.0 --device-id device-1
      aoe-pack client simulate --repo repo/ --trusted-root repo/root.json --tag tag_mnist \\
          --local-version 1.0.0 --app-version 3.0.0 --devices 10000
    """


@client.command()
@device_options
@click.option(
    "--repo",
    metavar="URL",
    help=_REPO_HELP + " Wins over --local-bundle; one of the two is needed.",
)
@click.option(
    "--local-bundle",
    type=INPUT_FILE,
    metavar="PATH",
    help="The bundle the app ships for --tag (its local model). Without --repo, the "
    "repository is the updateURL signed into it (the config's updateURL): where to look, "
    "never what to trust, which --trusted-root alone decides.",
)
@click.option(
    "--installed-version",
    required=True,
    metavar="V",
    help="Version of the model the device runs now.",
)
@click.option(
    "--local-version",
    metavar="V",
    help="Version of the model shipped in the app (default: --installed-version).",
)
@click.option("--device-id", required=True, metavar="D", help="A stable, per-install id.")
@click.option(
    "--download",
    "download_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Download, verify, decrypt and unpack the chosen release here.",
)
@decryption_key_option
@key_password_option("--decryption-key")
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The JSON file where the trusted root and last manifest accepted are kept "
    "(default: one file per repository, named by its root's repositoryId whatever URL "
    "serves it, in $XDG_STATE_HOME/aoe-pack/client/, ~/.local/state when XDG_STATE_HOME "
    "is unset).",
)
@click.option(
    "--min-manifest-version",
    "minimum",
    type=click.IntRange(1, MAX_SAFE_INTEGER),
    metavar="N",
    help="The repository manifest version the app was built with: older manifests are "
    "refused even on first contact (`aoe-pack manifest show --json` gives it at build time).",
)
@click.option("--plain-http", is_flag=True, default=None, help="HTTP for an oci:// registry.")
@timeout_option
@json_option
def check(
    tag: str,
    app_version: str,
    runtimes: tuple[str, ...],
    channels: tuple[str, ...],
    trusted_root: Path,
    repo: str | None,
    local_bundle: Path | None,
    installed_version: str,
    local_version: str | None,
    device_id: str,
    download_dir: Path | None,
    decryption_key: str | None,
    key_passwords: tuple[tuple[str, str], ...],
    state_path: Path | None,
    minimum: int | None,
    plain_http: bool | None,
    timeout: float | None,
    json_mode: bool,
) -> None:
    """Fetch and verify the manifest, decide, and (with --download) fetch the bundle.

    \b
    Refuses a manifest older than the last one accepted (rollback), an expired
    one (freeze), and a bundle that differs from the manifest (mix-and-match).

    \b
    Where to look: --repo if given; otherwise the updateURL signed into
    --local-bundle, the bundle the app ships for --tag, as AoE's app read
    the upgrade link from its model's config. The address only says where to
    look: every document found there is checked against --trusted-root, so
    a wrong address fails the check, it cannot make the device accept
    anything. With neither, the check is refused (exit 2).

    \b
    Example:
      aoe-pack client check --repo https://models.example.com/repo --tag tag_mnist \\
          --installed-version 1.0.0 --app-version 3.2.0 --device-id $ID \\
          --trusted-root root.json --download models/ --decryption-key device.key
      aoe-pack client check --local-bundle assets/mnist.aoe --tag tag_mnist \\
          --installed-version 1.0.0 --app-version 3.2.0 --device-id $ID \\
          --trusted-root assets/root.json
    """
    output = Output(json_mode)
    with handle_errors(json_mode):
        from aoe_pack import api
        from aoe_pack.client.address import require_one

        require_one(repo, local_bundle)  # before any key is loaded or prompted for
        device = _device(
            device_id,
            app_version,
            runtimes,
            channels,
            local_version or installed_version,
            installed_version,
        )
        result = api.check(
            repo=repo,
            local_bundle=local_bundle,
            tag=tag,
            device=device,
            trusted_root=trusted_root,
            state=state_path,
            download_dir=download_dir,
            decryption_key=load_optional_decryption_key(decryption_key, key_passwords),
            min_manifest_version=minimum,
            plain_http=plain_http,
            timeout=timeout,
        )

    def text() -> None:
        d = result.decision
        what = d.action.value + (f" {d.release.version}" if d.release else "")
        output.line(f"{tag}: {what}", fg="green", bold=True)
        output.line(f"  why       {d.reason}")
        for skipped in d.skipped:
            output.line(f"  skipped   {skipped}")
        output.line(f"  running   {d.running}")
        output.line(
            f"  manifest  version {result.manifest_version} (root version {result.root_version})"
        )
        where = "" if repo is not None else "  (updateURL of --local-bundle)"
        output.line(f"  repo      {result.repository}{where}")
        if result.unpacked:
            output.line(f"  ready     {result.unpacked} (verified, decrypted)")

    output.result(result.to_dict(), text)


@client.command()
@device_options
@_repo_option
@click.option(
    "--local-version", required=True, metavar="V", help="Model version shipped in the app."
)
@click.option(
    "--installed-version",
    "installed",
    multiple=True,
    metavar="V",
    help="A downloaded version devices run now; repeat it to spread them evenly over "
    "several (default: they all run the model shipped in the app).",
)
@click.option(
    "--installed",
    "installed_alias",
    multiple=True,
    hidden=True,
    help="Deprecated spelling of --installed-version.",
)
@click.option(
    "--devices",
    type=click.IntRange(1, 10_000_000),
    default=10_000,
    show_default=True,
    help="How many devices to decide for (ids sim-000000, sim-000001, ...).",
)
@click.option("--plain-http", is_flag=True, default=None, help="HTTP for an oci:// registry.")
@timeout_option
@json_option
def simulate(
    tag: str,
    app_version: str,
    runtimes: tuple[str, ...],
    channels: tuple[str, ...],
    trusted_root: Path,
    repo: str,
    local_version: str,
    installed: tuple[str, ...],
    installed_alias: tuple[str, ...],
    devices: int,
    plain_http: bool | None,
    timeout: float | None,
    json_mode: bool,
) -> None:
    """Verify the repository as a device would, then decide for a fleet of devices.

    \b
    Device ids are sim-000000, sim-000001, ... (docs/format.md 15.7), so the
    totals can be reproduced; with --installed-version given K times, device i
    runs the (i mod K)-th of them.

    \b
    Example:
      aoe-pack client simulate --repo repo/ --trusted-root repo/root.json --tag tag_mnist \\
          --local-version 1.0.0 --app-version 3.0.0 --devices 10000 --installed-version 1.1.0
    """
    output = Output(json_mode)
    if installed_alias:
        output.warn("--installed is deprecated: write --installed-version")
        installed += installed_alias
    with handle_errors(json_mode):
        from aoe_pack.client.simulate import simulate as _simulate
        from aoe_pack.client.verify_repo import verify_repository

        root = read_trusted_root(trusted_root)
        store = _open_repo(repo, plain_http, timeout)
        try:
            report = verify_repository(store, root, check_bundles=False)
        finally:
            store.close()
        template = _device("simulated", app_version, runtimes, channels, local_version, None)
        fleet = _simulate(report.manifest, tag, template, devices=devices, installed=installed)

    def text() -> None:
        output.line(
            f"{tag}: {devices} simulated devices on manifest version {report.manifest.version}",
            bold=True,
        )
        for label, n in sorted(fleet.outcomes.items(), key=lambda kv: -kv[1]):
            output.line(f"  {n:>8}  {100 * n / devices:6.2f}%  {label}")

    output.result({"manifestVersion": report.manifest.version, **fleet.to_dict()}, text)
