"""Placeholder: filled in by the oci server fixture work."""
