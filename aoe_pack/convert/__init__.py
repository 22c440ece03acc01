"""Validate a source model, convert it for each target runtime, prove parity.

Needs the ``convert`` extra (``pip install 'aoe-pack[convert]'``); every ML
framework is imported lazily, inside the converter that needs it, so importing
this package costs nothing and ``verify`` never touches it.
"""
