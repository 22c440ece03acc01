"""aoe-pack: signed, encrypted, versioned on-device model bundles.

The public API lives in the subpackages named for the pipeline:
:mod:`aoe_pack.config` (read and validate model configs),
:mod:`aoe_pack.keys` (generate and load keys),
:mod:`aoe_pack.bundle` (build, verify, inspect and unpack ``.aoe`` bundles).
"""

__version__ = "0.1.0"
