"""The ``flexmarket`` command line: the only part of ``market`` that imports ``settlement``."""

from market.cli.app import app, main

__all__ = ["app", "main"]
