"""The device side: decide what to run, and the reference update flow.

Light by design: the standard library, ``cryptography`` and aoe-pack's own
bundle verifier. ``decide`` is a pure function; ``check`` runs the whole flow
over any store (HTTP for devices).
"""

from aoe_pack.client.decide import Action, Decision, Device, bucket, decide

__all__ = ["Action", "Decision", "Device", "bucket", "decide"]
