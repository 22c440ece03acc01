"""Edits that insert releases: shared by publishing and by the pending-record repair."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from aoe_pack.errors import ReleaseConflictError
from aoe_pack.repository.model import Manifest, ModelReleases, Models, Release, tag_collision


def add_releases(
    new: Sequence[tuple[str, Release]], others: Sequence[tuple[str, Release]] = ()
) -> Callable[[Manifest], Models]:
    """The edit that inserts releases in precedence order (idempotent).

    ``new`` are this publisher's: a different bundle already published under
    the same version is an error, and so is a new tag whose name differs only
    in case from another tag (:func:`~aoe_pack.repository.model.tag_collision`).
    ``others`` are repaired from pending records: they are skipped when their
    version is taken, or their tag is refused so.
    """

    def edit(m: Manifest) -> Models:
        models = m.models
        folded: dict[str, str] = {}
        for t in models:  # sorted: of a pair an older publisher left, the first is named
            folded.setdefault(t.casefold(), t)
        for tag, rel in [*new, *others]:
            entry = models.get(tag)
            if entry is None:
                twin = folded.get(tag.casefold())
                if twin is not None:  # differs only in case: one folder on macOS, Windows
                    if any(r is rel for _, r in new):
                        raise tag_collision(tag, twin, existing=twin in m.models)
                    continue  # a pending record's tag: refused, as a taken version
                entry = ModelReleases()
                folded[tag.casefold()] = tag
            existing = entry.find(rel.version)
            if existing is not None:
                if existing.sha256 != rel.sha256 and any(r is rel for _, r in new):
                    raise ReleaseConflictError(
                        f"{tag} {rel.version} is already published with a different bundle "
                        f"({existing.sha256[:16]}…)",
                        hint="releases are immutable: bump the version in the model config",
                    )
                continue
            releases = sorted((*entry.releases, rel), key=lambda r: r.semver)
            models = models.updated(tag, replace(entry, releases=tuple(releases)))
        return models

    return edit


def holds_releases(new: Sequence[tuple[str, Release]]) -> Callable[[Manifest], bool]:
    def landed(m: Manifest) -> bool:
        for tag, rel in new:
            entry = m.models.get(tag)
            found = entry.find(rel.version) if entry else None
            if found is None or found.sha256 != rel.sha256:
                return False
        return True

    return landed
