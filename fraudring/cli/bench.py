"""`fraudring bench NAME [--json PATH]`: run `bench/NAME.py`, print its table, save its figures."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fraudring.errors import InvalidInput

console = Console()
BENCHMARKS = (
    "world",
    "graph",
    "decisions",
    "detection",
    "stream",
    "scale",
    "cluster",
    "knee",
    "faults",
    "rings",
    "learning",
)


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        name: Annotated[str, typer.Argument(help=f"One of: {', '.join(BENCHMARKS)}.")],
        json_path: Annotated[
            Path | None, typer.Option("--json", help="Write the figures as one flat JSON object.")
        ] = None,
        transactions: Annotated[
            int | None, typer.Option(help="World size, where the benchmark takes one.")
        ] = None,
        seed: Annotated[int, typer.Option(help="Seed of every random step.")] = 7,
        store: Annotated[
            str | None,
            typer.Option(help="Graph store of `bench graph`: falkordb (default) or neo4j."),
        ] = None,
        cluster: Annotated[
            bool,
            typer.Option(
                "--cluster",
                help="`bench decisions`: measure again through a 3-node Redis Cluster.",
            ),
        ] = False,
    ) -> None:
        """Run a benchmark under bench/ and print its figures."""
        if name not in BENCHMARKS:
            raise InvalidInput(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
        if store is not None and name != "graph":
            raise InvalidInput("--store: only `bench graph` takes a graph store")
        if cluster and name != "decisions":
            raise InvalidInput("--cluster: only `bench decisions` takes it")
        module = importlib.import_module(f"bench.{name}")
        extra: dict[str, object] = {"store": store} if store is not None else {}
        if cluster:
            extra["cluster"] = True
        figures: dict[str, float | int | str] = module.run(
            transactions=transactions, seed=seed, **extra
        )
        console.print(figures_table(name, figures))
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
            console.print(f"figures written to {json_path}")


def figures_table(name: str, figures: dict[str, float | int | str]) -> Table:
    """The figures as printed: names and values escaped, so a name such as
    ``redis_bytes_per_decision[vel]`` is not read as console markup and lose its part."""
    table = Table(title=f"bench {name}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        shown = f"{value:,.4g}" if isinstance(value, float) else str(value)
        table.add_row(escape(key), escape(shown))
    return table
