"""Headless subcommands of ``segstudio``: one module each (see :mod:`segstudio.cli`)."""
