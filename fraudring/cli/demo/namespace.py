"""Where a demo run keeps its state, so any command can be pointed at it (`fraudring --demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

DEMO_OUT: Final = Path("var/demo")
DEMO_PREFIX: Final = "fraudring-demo:"
DEMO_GRAPH: Final = "fraudring_demo"


def demo_environment(out: Path = DEMO_OUT) -> dict[str, str]:
    """The settings of a demo run with this `--out`: its data directory (embedded servers, models,
    spool), and its own key prefix and graph, so it never touches a deployment's."""
    return {
        "FRAUDRING_DATA_DIR": str(out / "data"),
        "FRAUDRING_REDIS_PREFIX": DEMO_PREFIX,
        "FRAUDRING_GRAPH_NAME": DEMO_GRAPH,
    }
