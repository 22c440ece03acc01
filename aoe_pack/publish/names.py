"""What the command line says about a release, checked as the manifest schema spells it.

Apart from :mod:`aoe_pack.publish.releases` so that the device side
(``aoe-pack client``) checks its options without importing publishing.
"""

from __future__ import annotations

import re

from aoe_pack.errors import UsageError, VersionError
from aoe_pack.versions import Version

_CHANNEL = re.compile(r"[a-z][a-z0-9-]{0,31}")  # as schemas/manifest.schema.json
_RUNTIME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")


def check_channel(channel: str, what: str = "--channel") -> None:
    """A channel name devices can match (the schema's pattern), else a usage error."""
    if not _CHANNEL.fullmatch(channel):
        raise UsageError(
            f"{what} {channel!r}: use lowercase letters, digits and '-' "
            "(e.g. stable, beta, canary-eu)"
        )


def check_runtime(runtime: str, what: str) -> None:
    """A runtime name as the schema spells them, else a usage error."""
    if not _RUNTIME.fullmatch(runtime):
        raise UsageError(f"{what} {runtime!r}: use a lowercase runtime name (tflite, mnn, ...)")


def cli_version(text: str, what: str) -> Version:
    """A version typed on the command line: a bad one is a usage error (exit 2)."""
    try:
        return Version.parse(text, what=what)
    except VersionError as e:
        raise UsageError(e.message, hint=e.hint) from e
