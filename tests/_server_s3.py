"""Placeholder: filled in by the s3 server fixture work."""
