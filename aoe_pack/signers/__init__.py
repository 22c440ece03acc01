"""The signers aoe-pack ships: keys in a PKCS#11 token (``pkcs11:``) and in AWS KMS (``awskms://``).

Each is an entry point of ``aoe_pack.signers`` (see :mod:`aoe_pack.keys.signer`),
imported only when a key of its scheme is opened.
"""
