"""Where a device looks for updates when it is not told (docs/format.md §15.6, "Where to look").

AoE's config named an "upgrade config link"; an aoe-pack bundle carries it,
signed, as ``model.updateURL``. A device is given its repository explicitly
(``--repo``), or reads it from the bundle the app ships as its local model.
The address is only where to look: what the device accepts is decided by the
root shipped in the app, whatever answers at that address, so the shipped
bundle is read here without keys, as ``inspect`` reads it.

The downloaded (installed) bundle is never asked: the download folder may be
writable by others (§15.6), and a planted bundle there could send the device
to a repository frozen at an old manifest. An app that moves its repository
ships a bundle naming the new address in an app update, as it ships a root.
"""

from __future__ import annotations

from pathlib import Path

from aoe_pack.bundle import inspect_bundle
from aoe_pack.errors import UsageError


def require_one(repo: str | None, local_bundle: Path | None) -> None:
    """Refuse a check with neither a repository nor a local bundle to find it in."""
    if repo is None and local_bundle is None:
        raise UsageError(
            "no repository to check: give --repo, or --local-bundle with the bundle the "
            "app ships (its updateURL names the repository)",
            hint="e.g. --repo https://models.example.com/repo/ or --local-bundle assets/mnist.aoe",
        )


def repository_of(*, repo: str | None, local_bundle: Path | None, tag: str) -> str:
    """The repository to read: ``repo`` if given, else the local bundle's ``updateURL``.

    Raises:
        UsageError: Neither is given; the local bundle is another model's
            (its address would be another repository's); or its config had
            no ``updateURL``.
    """
    if repo is not None:
        return repo
    if local_bundle is None:
        raise UsageError(
            "no repository to check: give --repo, or --local-bundle with the bundle the "
            "app ships (its updateURL names the repository)",
            hint="e.g. --repo https://models.example.com/repo/ or --local-bundle assets/mnist.aoe",
        )
    model = inspect_bundle(local_bundle).manifest.model
    if model.tag != tag:
        raise UsageError(
            f"--local-bundle {local_bundle} is model {model.tag!r}, not --tag {tag!r}: "
            "its updateURL names another model's repository",
            hint="pass the bundle the app ships for this tag, or --repo",
        )
    if model.update_url is None:
        raise UsageError(
            f"--local-bundle {local_bundle} names no repository: its config had no updateURL",
            hint="pass --repo URL, or rebuild the bundle from a config with "
            '"updateURL": "https://models.example.com/repo/"',
        )
    return model.update_url
