"""The ``aoe-pack`` command line: a thin layer over the library.

Each command module parses options, calls one library function and renders
its result; errors become exit codes only in :mod:`aoe_pack.cli._errors`.
"""

from __future__ import annotations

import sys

import click

from aoe_pack import __version__
from aoe_pack.cli import _streams
from aoe_pack.cli._errors import render_usage_error
from aoe_pack.cli._options import verbosity_options
from aoe_pack.cli.bench_cmds import bench
from aoe_pack.cli.build_cmd import build
from aoe_pack.cli.bundle_cmds import inspect, unpack, verify
from aoe_pack.cli.ceremony_cmds import apply_proposal, inspect_proposal, sign_proposal
from aoe_pack.cli.client_cmds import client
from aoe_pack.cli.config_cmds import migrate, validate
from aoe_pack.cli.delta_cmds import add_delta
from aoe_pack.cli.export_cmds import export
from aoe_pack.cli.keys_cmds import keygen, public_key
from aoe_pack.cli.manifest_cmds import manifest
from aoe_pack.cli.sign_cmd import sign


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="aoe-pack")
@verbosity_options
def cli() -> None:
    """Build, sign, encrypt and verify on-device ML model bundles (.aoe).

    \b
    Typical flow:
      aoe-pack keygen --out keys/release                 # signing key
      aoe-pack keygen --type x25519 --out keys/app       # device recipient key
      aoe-pack validate model/config.json
      aoe-pack build model/config.json --out model.aoe \\
          --sign-key keys/release.key --recipient keys/app.pub
      aoe-pack sign model.aoe --sign-key keys/review.key    # a second approver, later
      aoe-pack verify model.aoe --trusted-key keys/release.pub
      aoe-pack unpack model.aoe --out model/ --trusted-key keys/release.pub \\
          --decryption-key keys/app.key

    \b
    Publishing (a folder, s3:// or oci://) and the device side:
      aoe-pack manifest init --repo repo/ --root-key keys/release.pub \\
          --sign-key keys/release.key
      aoe-pack manifest publish model.aoe --repo repo/ --sign-key keys/release.key \\
          --rollout 10
      aoe-pack client check --repo repo/ --trusted-root repo/root.json --tag TAG \\
          --installed-version 1.0.0 --app-version 3.0.0 --device-id ID

    Every command takes --json. Exit codes: 0 ok; 1 the work was refused or
    failed; 2 the command line itself is wrong (an unknown option, a bad
    value, a file that does not exist).
    What TensorFlow and the runtimes log is hidden unless -v/--verbose is
    given; -q/--quiet leaves only errors.
    """


for command in (
    keygen, validate, migrate, build, verify, inspect, unpack, export, bench, manifest, client,
):  # fmt: skip
    cli.add_command(command)
cli.add_command(sign)
for command in (sign_proposal, inspect_proposal, apply_proposal, add_delta):
    manifest.add_command(command)
cli.add_command(public_key)


def main() -> None:
    """Console-script entry point.

    click reports its own usage errors (a missing argument, a value out of
    range) as text; with ``--json`` they are JSON on stdout like every other
    error, so scripts can rely on stdout. Exit code 2 either way.
    """
    _streams.claim()
    try:
        code = cli.main(standalone_mode=False)
    except click.ClickException as e:
        if "--json" in sys.argv[1:]:
            render_usage_error(e.format_message())
        else:
            e.show(file=_streams.err())
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("Aborted!", file=_streams.err())
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
