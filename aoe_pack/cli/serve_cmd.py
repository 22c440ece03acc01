"""``aoe-pack serve``: the device's decision as an HTTP service (docs/serve.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from aoe_pack._jcs import MAX_SAFE_INTEGER
from aoe_pack.cli import _streams
from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import (
    INPUT_FILE,
    key_password_option,
    load_optional_decryption_key,
    read_trusted_root,
    timeout_option,
)
from aoe_pack.errors import UsageError

if TYPE_CHECKING:
    from aoe_pack.serve.aoe_routes import AoeOptions

_BRIDGE = "AoE bridge (docs/aoe-bridge.md)"


@click.command()
@click.option(
    "--repo",
    required=True,
    metavar="URL",
    help="The repository: a folder, s3://, oci:// or http(s)://, read as devices read it.",
)
@click.option(
    "--trusted-root",
    required=True,
    type=INPUT_FILE,
    help="The root.json the apps ship: the only trust the service starts from.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0: any free one, logged in the `listening` line).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How often to look for a new manifest (a conditional read: an unchanged "
    "repository costs a 304 or a token comparison).",
)
@click.option(
    "--min-manifest-version",
    "minimum",
    type=click.IntRange(1, MAX_SAFE_INTEGER),
    metavar="N",
    help="Refuse manifests older than N from the start, as apps built with it do "
    "(without it, an instance's floor is the first manifest it reads).",
)
@click.option("--plain-http", is_flag=True, default=None, help="HTTP for an oci:// registry.")
@timeout_option
@click.option(
    "--json-logs", is_flag=True, help="Log one JSON object per line on stderr (else key=value)."
)
@click.option(
    "--aoe-model",
    "aoe_models",
    multiple=True,
    metavar="APPID:MODELID=TAG[@MODELDIR]",
    help="Turn the AoE bridge on for apps built on AoE's Android SDK: POST /upgradeModel "
    "answers the AoE model with these ids (server.config's appId, model.config's modelId "
    "and modelDir, default TAG) from TAG's releases. Repeat for several models; the bridge "
    "is off without it. WARNING: it downgrades those devices to AoE's old guarantees: "
    "they check only an MD5 that comes from this same server, nothing is signed, and "
    "AoE's `sign` is not checked. See docs/aoe-bridge.md.",
)
@click.option(
    "--aoe-decryption-key",
    metavar="KEY",
    help="Serve encrypted releases to AoE apps, decrypted with this private key of one of "
    "their recipients (path or env://VAR): the zip then carries the model in the clear. "
    "Without it, the bridge refuses encrypted releases (502) and the apps keep their model.",
)
@key_password_option("--aoe-decryption-key")
@click.option(
    "--aoe-public-url",
    metavar="URL",
    help="The zips' base URL as the apps reach it: modelUrl is URL/<sha256>.zip, served "
    "here at /aoe/zips/<sha256>.zip. Default: http://HOST:PORT/aoe/zips from --host and "
    "the port listened on (required with a wildcard --host such as 0.0.0.0).",
)
@click.option(
    "--aoe-zip-dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Where the bridge keeps the zips it builds, one per release and model. "
    "Default: a temporary folder, removed when the service stops.",
)
def serve(
    repo: str,
    trusted_root: Path,
    host: str,
    port: int,
    poll_interval: float,
    minimum: int | None,
    plain_http: bool | None,
    timeout: float | None,
    json_logs: bool,
    aoe_models: tuple[str, ...],
    aoe_decryption_key: str | None,
    key_passwords: tuple[tuple[str, str], ...],
    aoe_public_url: str | None,
    aoe_zip_dir: Path | None,
) -> None:
    """Answer devices' update decisions over HTTP, from a verified repository.

    \b
    The service reads the repository as a device does (root chain from
    --trusted-root, signatures, rollback, expiry), keeps the last good
    manifest in memory and looks for a new one every --poll-interval. A new
    manifest that does not verify is refused: the last good one keeps
    answering, and GET /healthz says "degraded" with the error. Nothing is
    written to disk (but the AoE bridge's zips), so any number of instances
    behind a load balancer answer alike.

    \b
    Endpoints (docs/serve.md):
      POST /v1/decide  {"tag", "installedVersion", "appVersion", "deviceId",
                        "localVersion", "runtimes", "channels"} -> what
                       `client check --json` prints for that device
      GET  /healthz    status ok | degraded | failing, manifest version,
                       last refresh, last error
    With --aoe-model, the AoE bridge (off by default; read its warning):
      POST /upgradeModel     AoE's upgrade request -> {"code", "msg", "data"}
      GET  /aoe/zips/NAME    the zip modelUrl names

    \b
    Example:
      aoe-pack serve --repo s3://models/repo --trusted-root root.json \\
          --host 0.0.0.0 --port 8080 --poll-interval 30 --json-logs
      curl -s localhost:8080/v1/decide -d '{"tag": "tag_mnist",
          "installedVersion": "1.0.0", "appVersion": "3.2.0", "deviceId": "d-1"}'
      aoe-pack serve --repo s3://models/repo --trusted-root root.json \\
          --host 0.0.0.0 --aoe-model 72:12134=tag_mnist@mnist \\
          --aoe-public-url https://models.example.com/aoe/zips
    """
    with handle_errors(json_mode=False):
        from aoe_pack.serve import logs
        from aoe_pack.serve.run import ServeOptions
        from aoe_pack.serve.run import serve as _serve

        aoe = _aoe_options(
            aoe_models, aoe_decryption_key, key_passwords, aoe_public_url, aoe_zip_dir
        )
        logs.configure(_streams.err(), as_json=json_logs)
        _serve(
            ServeOptions(
                repo=repo,
                trusted_root=read_trusted_root(trusted_root),
                host=host,
                port=port,
                poll_interval=poll_interval,
                min_manifest_version=minimum,
                plain_http=plain_http,
                timeout=timeout,
                aoe=aoe,
            )
        )


def _aoe_options(
    models: tuple[str, ...],
    decryption_key: str | None,
    key_passwords: tuple[tuple[str, str], ...],
    public_url: str | None,
    zip_dir: Path | None,
) -> AoeOptions | None:
    """The bridge's options, or None when it is off (no ``--aoe-model``)."""
    if not models:
        given = [
            name
            for name, value in (
                ("--aoe-decryption-key", decryption_key),
                ("--key-password", key_passwords),
                ("--aoe-public-url", public_url),
                ("--aoe-zip-dir", zip_dir),
            )
            if value
        ]
        if given:
            raise UsageError(
                f"{', '.join(given)} configure the {_BRIDGE}, which is off",
                hint="turn it on with --aoe-model APPID:MODELID=TAG, or leave them out",
            )
        return None
    from aoe_pack.serve.aoe_bridge import AoeMapping
    from aoe_pack.serve.aoe_routes import AoeOptions

    mapping = AoeMapping.parse(models)
    key = load_optional_decryption_key(decryption_key, key_passwords, option="--aoe-decryption-key")
    return AoeOptions(mapping=mapping, decryption_key=key, public_url=public_url, zip_dir=zip_dir)
