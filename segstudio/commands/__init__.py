"""Headless subcommands of ``segstudio``: one module each (see :mod:`segstudio.cli`)."""


class CommandError(Exception):
    """A failure the user can act on: printed as ``segstudio: error: …`` with exit code 2."""
