"""Publish bundles and keep the repository manifest: one workflow over any store.

``workflow`` does read-edit-sign-compare-and-swap; ``releases`` holds the edits
(publish, yank, rollout, pin); ``pending`` finishes an interrupted publish.
The bytes move through :mod:`aoe_pack.storage`.
"""
