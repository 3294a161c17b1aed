"""`fraudring demo`: the end-to-end run on the embedded runtime (see fraudring.cli.demo.run)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from fraudring.cli.demo.namespace import DEMO_OUT, demo_environment
from fraudring.errors import InvalidInput
from fraudring.settings import get_settings


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        transactions: Annotated[int, typer.Option(help="Size of the simulated world.")] = 100_000,
        seed: Annotated[int, typer.Option(help="Seed of the world.")] = 7,
        live_days: Annotated[
            float, typer.Option(help="Last days replayed live through the API.")
        ] = 4.0,
        warmup_days: Annotated[
            float, typer.Option(help="Days replayed before them to warm velocity.")
        ] = 2.0,
        out: Annotated[Path, typer.Option(help="Where the world, logs and report go.")] = DEMO_OUT,
        port: Annotated[int, typer.Option(help="API port (0: a free one).")] = 0,
        keep_serving: Annotated[
            bool, typer.Option(help="Keep the API up for the investigator page.")
        ] = False,
        fraud_rate: Annotated[
            float, typer.Option(help="Share of fraudulent transactions in the world.")
        ] = 0.01,
        graph: Annotated[
            str,
            typer.Option(
                help="Graph store: embedded (FalkorDB, or FRAUDRING_GRAPH_URL when set) or "
                "neo4j (a local Neo4j Community server, tools/neo4j, started for the run)."
            ),
        ] = "embedded",
    ) -> None:
        """Simulate, load history, retrain, serve, replay the live days, and report."""
        from fraudring.cli.demo.run import DemoOptions, only_demo_in, run
        from fraudring.runtime import services
        from fraudring.settings import load_settings

        if transactions < 20_000:
            raise InvalidInput("--transactions: at least 20,000 so that rings and labels exist")
        if graph not in ("embedded", "neo4j"):
            raise InvalidInput(f"--graph: one of embedded, neo4j; got {graph!r}")
        if not 0 < fraud_rate <= 0.05:
            raise InvalidInput("--fraud-rate: must be in (0, 0.05]")
        if live_days <= 0 or warmup_days < 0 or live_days + warmup_days >= 25:
            raise InvalidInput(
                "--live-days/--warmup-days: need 0 < live, 0 <= warmup, live + warmup < 25"
            )
        opts = DemoOptions(
            transactions=transactions, seed=seed, live_days=live_days, warmup_days=warmup_days,
            out=out, port=port, keep_serving=keep_serving, fraud_rate=fraud_rate,
        )  # fmt: skip
        with only_demo_in(out), contextlib.ExitStack() as stack:
            if graph == "neo4j":
                stack.enter_context(_neo4j())
            # The demo's own namespace: its embedded server, models and spool under --out, and a
            # key prefix and graph of its own on configured servers, all cleared at each start.
            shutil.rmtree(out / "data", ignore_errors=True)
            os.environ.update(demo_environment(out))
            get_settings.cache_clear()
            with services(get_settings()) as ep:
                get_settings.cache_clear()
                settings = load_settings()  # now with the resolved server URLs
                run(opts, settings, ep)


@contextlib.contextmanager
def _neo4j() -> Iterator[None]:
    """A local Neo4j server for the run: its URL and a fresh password go to the environment, so
    the API and the worker the demo starts use it too."""
    from graph import neo4j_server

    reason = neo4j_server.missing()
    if reason is not None:
        raise InvalidInput(f"--graph neo4j: {reason}")
    with neo4j_server.running(heap="2g", pagecache_mb=1024) as server:
        typer.echo(f"neo4j: {server.url} (tools/neo4j, started in {server.started_s:.0f} s)")
        names = ("FRAUDRING_GRAPH_URL", "FRAUDRING_GRAPH_USER", "FRAUDRING_GRAPH_PASSWORD")
        saved = {k: os.environ.get(k) for k in names}
        os.environ.update(dict(zip(names, (server.url, server.user, server.password), strict=True)))
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
