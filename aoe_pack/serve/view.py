"""The last good snapshot of the repository, its refresh, and the health it reports.

:class:`RepositoryView` holds one :class:`~aoe_pack.serve.reading.Snapshot` in
memory. :meth:`RepositoryView.refresh` reads the repository again (from a
worker thread: the reads block) and swaps the snapshot in one assignment, so
a request reads either the old snapshot or the new one, never half of each.
When a read fails (a manifest that does not verify, a rollback, an
unreachable store) the snapshot stays the last good one, and the failure is
what :meth:`RepositoryView.health` and the log report until a read succeeds.
A snapshot that has expired is no longer good: the service then answers no
decision (a device takes none from it either) and reports ``failing``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aoe_pack.errors import AoePackError
from aoe_pack.repository.model import format_time
from aoe_pack.repository.root import verify_self_signed
from aoe_pack.repository.trust import Floor
from aoe_pack.serve.reading import Snapshot, read_snapshot
from aoe_pack.storage.store import Store

log = logging.getLogger("aoe_pack.serve")

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Failure:
    """Why the last read of the repository was refused."""

    code: str
    message: str
    at: dt.datetime

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "at": format_time(self.at)}


class RepositoryView:
    """The repository as the service last verified it (module docstring)."""

    def __init__(
        self,
        store: Store,
        trusted_root: bytes,
        *,
        minimum: int | None = None,
        clock: Clock = utc_now,
    ) -> None:
        """Check ``trusted_root`` and read the repository once: a service that cannot
        verify it at start-up raises the error (a wrong root, an expired manifest)
        rather than serve nothing."""
        self.store = store
        self._start = verify_self_signed(trusted_root, what="--trusted-root")
        self._minimum = (
            Floor(minimum, None, frozenset(self._start.keys)) if minimum is not None else None
        )
        self._clock = clock
        now = clock()
        self._snapshot = read_snapshot(store, self._start, now=now, minimum=self._minimum)
        self._refreshed_at = self._changed_at = now
        self._failure: Failure | None = None
        log.info("verified", extra={"fields": self._summary()})

    @property
    def snapshot(self) -> Snapshot:
        """The last good snapshot (it may have expired since: see :meth:`usable`)."""
        return self._snapshot

    def now(self) -> dt.datetime:
        """The view's clock (tests move it)."""
        return self._clock()

    def usable(self) -> Snapshot:
        """The snapshot decisions read now; :class:`~aoe_pack.errors.ExpiredMetadataError`
        once it has expired."""
        snapshot = self._snapshot
        snapshot.check_expiry(self._clock())
        return snapshot

    def refresh(self) -> bool:
        """Read the repository again; True when the snapshot changed.

        Never raises: a failure is recorded (:meth:`health`) and logged, and the
        last good snapshot stays.
        """
        now = self._clock()
        held = self._snapshot
        try:
            fresh = read_snapshot(
                self.store, self._start, now=now, minimum=self._minimum, held=held
            )
        except AoePackError as e:
            self._fail(Failure(e.code, e.message, now))
            return False
        except Exception as e:  # a bug or an unwrapped I/O error: keep serving
            log.exception("refresh failed unexpectedly")
            self._fail(Failure("error", f"{type(e).__name__}: {e}", now))
            return False
        recovered = self._failure is not None
        self._snapshot, self._refreshed_at, self._failure = fresh, now, None
        if fresh is not held:
            self._changed_at = now
            log.info("updated", extra={"fields": self._summary()})
        elif recovered:
            log.info("recovered", extra={"fields": self._summary()})
        return fresh is not held

    def _fail(self, failure: Failure) -> None:
        before, self._failure = self._failure, failure
        if before is not None and (before.code, before.message) == (failure.code, failure.message):
            return  # logged when it first happened; /healthz keeps saying it
        log.warning(
            "refused",
            extra={"fields": {**self._summary(), "code": failure.code, "error": failure.message}},
        )

    def _summary(self) -> dict[str, Any]:
        s = self._snapshot
        return {
            "repository": self.store.url,
            "manifestVersion": s.version,
            "rootVersion": s.root.version,
            "source": s.source,
            "tags": len(s.manifests),
        }

    def health(self) -> dict[str, Any]:
        """``GET /healthz``: ``ok``, ``degraded`` (the last read failed; the last good
        snapshot answers) or ``failing`` (it expired: no decision is answered)."""
        now = self._clock()
        s, failure = self._snapshot, self._failure
        status = "failing" if s.expires <= now else "degraded" if failure else "ok"
        return {
            "status": status,
            "repository": self.store.url,
            "manifestVersion": s.version,
            "rootVersion": s.root.version,
            "source": s.source,
            "tags": len(s.manifests),
            "expires": format_time(s.expires),
            "lastRefresh": format_time(self._refreshed_at),
            "lastChange": format_time(self._changed_at),
            "lastError": failure.to_dict() if failure else None,
        }

    def close(self) -> None:
        self.store.close()
