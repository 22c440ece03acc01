"""Publish a bundle only to the repository its ``updateURL`` names (docs/format.md §15.8.1).

A bundle built from a config with ``updateURL`` tells the app that ships it
where to look for updates (``client check --local-bundle``). Published to
another repository, its releases would never be found by those apps. The
publisher cannot tell that from its storage address (``s3://bucket/models``
is served as ``https://models.example.com/``), so the release manager gives
the address devices read, ``--public-url``; then every bundle whose
``updateURL`` names another repository is refused before anything is
uploaded. A bundle without ``updateURL`` names none and is accepted.

The check reads each manifest without keys, as ``inspect`` does; the verify
that follows covers the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aoe_pack.bundle import inspect_bundle
from aoe_pack.errors import UpdateURLMismatchError, UsageError
from aoe_pack.urls import EXAMPLE, normalise, same_repository, url_problem


def check_public_url(public_url: str) -> str:
    """``public_url`` if it is a repository address (docs/format.md §5.2), else UsageError."""
    problem = url_problem(public_url)
    if problem is not None:
        raise UsageError(
            f"--public-url {public_url[:200]!r} {problem}",
            hint=f"the https:// address devices read the repository at, e.g. {EXAMPLE}",
        )
    return public_url


def check_update_urls(bundles: Sequence[Path], public_url: str) -> None:
    """Refuse the first bundle whose ``updateURL`` names another repository than ``public_url``.

    Addresses are compared as :func:`aoe_pack.urls.normalise` writes them:
    scheme and host lowercased, default port and trailing ``/`` dropped.
    """
    check_public_url(public_url)
    for path in bundles:
        url = inspect_bundle(Path(path)).manifest.model.update_url
        if url is not None and not same_repository(url, public_url):
            raise UpdateURLMismatchError(
                f"{Path(path).name}: its updateURL {url} names another repository than "
                f"--public-url {public_url} ({normalise(url)} is not {normalise(public_url)}); "
                "apps that ship it would look for updates there",
                hint=f"publish it to the repository served at {url}, or rebuild it from a "
                f'config with "updateURL": "{public_url}"',
            )
