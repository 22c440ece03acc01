"""The ``aoe-pack`` command line: a thin layer over the library.

Each command module parses options, calls one library function and renders
its result; errors become exit codes only in :mod:`aoe_pack.cli._errors`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping

import click

from aoe_pack import __version__
from aoe_pack.cli import _streams
from aoe_pack.cli._errors import render_usage_error
from aoe_pack.cli._options import verbosity_options

# Every command, by name: "module:attribute" under aoe_pack.cli. A command's
# module is imported only when that command runs or is listed (--help), so
# `aoe-pack verify` never imports what publishing, the device client or a
# build need.
COMMANDS = {
    "bench": "bench_cmds:bench",
    "build": "build_cmd:build",
    "client": "client_cmds:client",
    "export": "export_cmds:export",
    "inspect": "bundle_cmds:inspect",
    "keygen": "keys_cmds:keygen",
    "manifest": "manifest_cmds:manifest",
    "migrate": "config_cmds:migrate",
    "public-key": "keys_cmds:public_key",
    "serve": "serve_cmd:serve",
    "sign": "sign_cmd:sign",
    "unpack": "bundle_cmds:unpack",
    "validate": "config_cmds:validate",
    "verify": "bundle_cmds:verify",
}


def _load(name: str) -> click.Command:
    module, attribute = COMMANDS[name].split(":")
    command: object = getattr(importlib.import_module(f"aoe_pack.cli.{module}"), attribute)
    if not isinstance(command, click.Command) or command.name != name:
        raise TypeError(f"aoe_pack.cli.{COMMANDS[name]} is not the command {name!r}")
    if name == "manifest" and isinstance(command, click.Group):
        from aoe_pack.cli.ceremony_cmds import apply_proposal, inspect_proposal, sign_proposal
        from aoe_pack.cli.delta_cmds import add_delta

        for sub in (sign_proposal, inspect_proposal, apply_proposal, add_delta):
            command.add_command(sub)
    return command


class _LazyCommands(MutableMapping[str, click.Command]):
    """The group's ``commands``: every name is listed, a command is imported when looked up.

    click's own "lazy loading subcommands" recipe overrides ``get_command`` and
    ``list_commands``; keeping ``Group.commands`` a complete mapping instead
    means code that walks ``cli.commands`` (tests, docs) still sees every command.
    """

    def __init__(self, names: list[str]) -> None:
        self._names = dict.fromkeys(names)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if name not in self._names:
                raise KeyError(name)
            self._loaded[name] = _load(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._names[name] = None
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._names[name]
        self._loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@click.group(
    commands=_LazyCommands(list(COMMANDS)),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
      aoe-pack serve --repo repo/ --trusted-root repo/root.json --port 8080  # over HTTP

    Every command takes --json (serve: --json-logs). Exit codes: 0 ok; 1 the work was refused or
    failed; 2 the command line itself is wrong (an unknown option, a bad
    value, a file that does not exist).
    What TensorFlow and the runtimes log is hidden unless -v/--verbose is
    given; -q/--quiet leaves only errors.
    """


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
