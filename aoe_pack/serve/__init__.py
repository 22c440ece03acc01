"""Servers that answer from a verified repository: ``aoe-pack serve`` (docs/serve.md)
and the AoE bridge (docs/aoe-bridge.md).

The pipeline, one module each:

- :mod:`~aoe_pack.serve.reading`: the repository read and verified as a device
  reads it (root chain, signatures, rollback, expiry), for every tag at once;
- :mod:`~aoe_pack.serve.view`: the last good snapshot held in memory, its
  conditional refresh, and the health it reports;
- :mod:`~aoe_pack.serve.request` and :mod:`~aoe_pack.serve.decision`: a
  decision request parsed as ``client check`` parses its options, answered by
  the device's own decision code;
- :mod:`~aoe_pack.serve.app`: the ASGI application (routes, body limits, JSON
  errors, routes added by a caller);
- :mod:`~aoe_pack.serve.run`: uvicorn, the ASGI server, and the polling task
  (the only module that imports uvicorn, the ``[serve]`` extra);
- :mod:`~aoe_pack.serve.aoe_request`, :mod:`~aoe_pack.serve.aoe_bridge` and
  :mod:`~aoe_pack.serve.legacy_zip`: AoE's ``/upgradeModel`` protocol answered
  from our decision, with a legacy zip built from the signed bundle;
- :mod:`~aoe_pack.serve.aoe_routes`: that bridge as two routes of the
  application, on when ``aoe-pack serve`` is given ``--aoe-model``.

Nothing is written to disk but the bridge's zips: instances started on one
repository answer alike.
"""
