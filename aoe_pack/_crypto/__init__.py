"""Hazardous cryptography, confined here.

Nothing outside this package imports ``cryptography``. The rest of aoe-pack
handles keys as opaque :class:`~aoe_pack._crypto.asymmetric.PrivateKey` /
:class:`~aoe_pack._crypto.asymmetric.PublicKey` values and calls the functions of
the submodules: ``keys`` (generation, PEM, key ids), ``sign`` (DSSE
signatures), ``stream`` (segmented AES-256-GCM), ``wrap`` (HPKE and
key-encryption-key wrapping of the data key), ``hsm`` (a PKCS#11 token's public
points and raw ECDSA signatures, in DER) and ``_der`` (the strict DER and
PBES2 encoding of X-Wing seed keys, which ``cryptography`` cannot serialise).
"""


def cryptography_version() -> str:
    """The version of ``cryptography`` in use, for a bundle's provenance.

    The package's own ``__version__``: the same string as its distribution's
    metadata, without importing :mod:`importlib.metadata` (tens of ms at start-up).
    """
    import cryptography

    return cryptography.__version__
