"""``aoe-pack serve``: the device's decision as an HTTP service (docs/serve.md)."""

from __future__ import annotations

from pathlib import Path

import click

from aoe_pack._jcs import MAX_SAFE_INTEGER
from aoe_pack.cli import _streams
from aoe_pack.cli._errors import handle_errors
from aoe_pack.cli._options import INPUT_FILE, read_trusted_root, timeout_option


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
) -> None:
    """Answer devices' update decisions over HTTP, from a verified repository.

    \b
    The service reads the repository as a device does (root chain from
    --trusted-root, signatures, rollback, expiry), keeps the last good
    manifest in memory and looks for a new one every --poll-interval. A new
    manifest that does not verify is refused: the last good one keeps
    answering, and GET /healthz says "degraded" with the error. Nothing is
    written to disk, so any number of instances behind a load balancer
    answer alike.

    \b
    Endpoints (docs/serve.md):
      POST /v1/decide  {"tag", "installedVersion", "appVersion", "deviceId",
                        "localVersion", "runtimes", "channels"} -> what
                       `client check --json` prints for that device
      GET  /healthz    status ok | degraded | failing, manifest version,
                       last refresh, last error

    \b
    Example:
      aoe-pack serve --repo s3://models/repo --trusted-root root.json \\
          --host 0.0.0.0 --port 8080 --poll-interval 30 --json-logs
      curl -s localhost:8080/v1/decide -d '{"tag": "tag_mnist",
          "installedVersion": "1.0.0", "appVersion": "3.2.0", "deviceId": "d-1"}'
    """
    # TODO(issue 13, part 3): --aoe-model APPID:MODELID=TAG (repeatable) and
    # --aoe-decryption-key, turned into extra_routes (POST /upgradeModel and its
    # zips) by aoe_pack.serve.aoe_bridge and passed to run.serve().
    with handle_errors(json_mode=False):
        from aoe_pack.serve import logs
        from aoe_pack.serve.run import ServeOptions
        from aoe_pack.serve.run import serve as _serve

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
            )
        )
