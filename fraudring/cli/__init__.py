"""The `fraudring` CLI and the demo: the roof over every package, one module per capability.

Nothing imports it back: the foundation (settings, errors, logs, registry, runtime) stays below
everything, so `fraudring.cli` can import graph, realtime, gnn, workers and world freely.
"""

from fraudring.cli.app import app, main

__all__ = ["app", "main"]
