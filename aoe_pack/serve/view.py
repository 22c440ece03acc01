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

import dataclasses
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


@dataclass(frozen=True)
class _State:
    """Everything a request reads, swapped in one assignment (a request never sees a
    new snapshot with an old error, or the reverse)."""

    snapshot: Snapshot
    refreshed_at: dt.datetime
    """The last read that succeeded, whether or not anything had changed."""
    changed_at: dt.datetime
    failure: Failure | None = None


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
        snapshot = read_snapshot(store, self._start, now=now, minimum=self._minimum)
        self._state = _State(snapshot, now, now)
        log.info("verified", extra={"fields": self._summary(snapshot)})

    @property
    def snapshot(self) -> Snapshot:
        """The last good snapshot (it may have expired since: see :meth:`usable`)."""
        return self._state.snapshot

    def now(self) -> dt.datetime:
        """The view's clock (tests move it)."""
        return self._clock()

    def usable(self) -> Snapshot:
        """The snapshot decisions read now; :class:`~aoe_pack.errors.ExpiredMetadataError`
        once it has expired."""
        snapshot = self._state.snapshot
        snapshot.check_expiry(self._clock())
        return snapshot

    def refresh(self) -> bool:
        """Read the repository again; True when the snapshot changed.

        Never raises: a failure is recorded (:meth:`health`) and logged, and the
        last good snapshot stays.
        """
        now = self._clock()
        state = self._state
        held = state.snapshot
        try:
            fresh = read_snapshot(
                self.store, self._start, now=now, minimum=self._minimum, held=held
            )
        except AoePackError as e:
            self._fail(state, Failure(e.code, e.message, now))
            return False
        except Exception as e:  # a bug or an unwrapped I/O error: keep serving
            log.exception("refresh failed unexpectedly")
            self._fail(state, Failure("error", f"{type(e).__name__}: {e}", now))
            return False
        changed = fresh is not held
        self._state = _State(fresh, now, now if changed else state.changed_at)
        if changed:
            log.info("updated", extra={"fields": self._summary(fresh)})
        elif state.failure is not None:
            log.info("recovered", extra={"fields": self._summary(fresh)})
        return changed

    def _fail(self, state: _State, failure: Failure) -> None:
        self._state = dataclasses.replace(state, failure=failure)
        before = state.failure
        if before is not None and (before.code, before.message) == (failure.code, failure.message):
            return  # logged when it first happened; /healthz keeps saying it
        fields = {**self._summary(state.snapshot), "code": failure.code, "error": failure.message}
        log.warning("refused", extra={"fields": fields})

    def _summary(self, s: Snapshot) -> dict[str, Any]:
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
        state = self._state
        s, failure = state.snapshot, state.failure
        status = "failing" if s.expires <= now else "degraded" if failure else "ok"
        return {
            "status": status,
            "repository": self.store.url,
            "manifestVersion": s.version,
            "rootVersion": s.root.version,
            "source": s.source,
            "tags": len(s.manifests),
            "expires": format_time(s.expires),
            "lastRefresh": format_time(state.refreshed_at),
            "lastChange": format_time(state.changed_at),
            "lastError": failure.to_dict() if failure else None,
        }

    def close(self) -> None:
        self.store.close()
