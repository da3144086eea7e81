"""The ``ehrbench`` command line: parses flags, calls the stages, prints."""

from ehrbench.cli.app import cli, main

__all__ = ["cli", "main"]
