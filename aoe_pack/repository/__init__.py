"""The repository's signed documents: root, manifest, trust checks. No I/O.

Not to be confused with a bundle's own manifest (:mod:`aoe_pack.bundle.manifest`)
or an OCI manifest (:mod:`aoe_pack.storage.oci`). :mod:`aoe_pack.publish` writes
these documents to a store; :mod:`aoe_pack.client` reads them on the device and
decides what to run.
"""
