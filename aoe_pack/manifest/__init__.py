"""The repository's signed documents: root, manifest, versions. No I/O.

``aoe_pack.publish`` writes them to destinations; ``aoe_pack.client`` reads
them on the device and decides what to run.
"""
