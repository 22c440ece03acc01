"""aoe-pack: signed, encrypted, versioned on-device model bundles.

:mod:`aoe_pack.api` does the whole job from Python (build, verify, inspect,
unpack, publish, check), one typed call per command. Beneath it, the
subpackages are named for the pipeline:
:mod:`aoe_pack.config` (read and validate model configs),
:mod:`aoe_pack.keys` (generate and load keys),
:mod:`aoe_pack.bundle` (build, verify, inspect and unpack ``.aoe`` bundles).
"""

__version__ = "0.1.0"
