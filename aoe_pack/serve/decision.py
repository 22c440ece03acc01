"""``POST /v1/decide``: the answer ``client check --json`` gives, from the held snapshot.

The decision is :func:`aoe_pack.client.decide.decide`, the device's own, on
what the device would read (the tag's document at the snapshot's version),
and the answer is :meth:`aoe_pack.client.check.CheckResult.to_dict` with
``ok``: the document ``client check --json`` prints for the same device
without ``--download`` (schemas/cli/client-check.schema.json), ``repository``
being the service's ``--repo``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aoe_pack.client.check import CheckResult
from aoe_pack.client.decide import decide
from aoe_pack.serve.reading import Snapshot
from aoe_pack.serve.request import DecisionRequest


def answer(
    snapshot: Snapshot, request: DecisionRequest, *, repository: str, now: dt.datetime
) -> dict[str, Any]:
    """The decision for ``request`` (module docstring).

    Raises :class:`~aoe_pack.errors.ExpiredMetadataError` when ``snapshot`` has
    expired and :class:`~aoe_pack.errors.ReleaseNotFoundError` for a tag it
    does not list, as ``client check`` does.
    """
    snapshot.check_expiry(now)
    manifest = snapshot.require(request.tag)
    decision = decide(manifest, request.tag, request.device)
    result = CheckResult(decision, snapshot.root.version, snapshot.version, repository=repository)
    return {"ok": True, **result.to_dict()}
