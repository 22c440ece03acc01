"""Placeholder: filled in by the http server fixture work."""
