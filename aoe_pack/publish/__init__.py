"""Publish bundles and keep the repository manifest: one workflow, many destinations.

``workflow`` does read-edit-sign-compare-and-swap; ``releases`` holds the edits
(publish, yank, rollout, pin); ``local``, ``fsspec_store`` and ``oci`` move
bytes; ``destinations`` picks one from a ``--repo`` URL.
"""
