"""Subcommands of the `fraudring` CLI, one module per capability."""
