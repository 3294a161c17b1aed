"""`fraudring neighbourhood` and `fraudring graph load`: the graph store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _as_of(text: str | None) -> float | None:
    from fraudring.errors import InvalidInput

    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--as-of: not an ISO date or time: {text!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def register(app: typer.Typer) -> None:
    graph_app = typer.Typer(help="The graph store: bulk loads.", no_args_is_help=True)
    app.add_typer(graph_app, name="graph")

    @graph_app.command("load")
    def graph_load(
        data: Annotated[Path, typer.Option(help="World directory (fraudring simulate / load).")],
        as_of: Annotated[
            str | None,
            typer.Option(help="Load what was known before this ISO date/time (UTC); default all."),
        ] = None,
    ) -> None:
        """Bulk-load a world into the configured graph store with the labels known by --as-of,
        then detect rings."""
        from tqdm import tqdm

        from fraudring.runtime import services
        from fraudring.settings import get_settings
        from graph.service import open_store
        from world.bulkload import load_world

        at = _as_of(as_of)
        settings = get_settings()
        bars: dict[str, tqdm] = {}

        def progress(stage: str, n: int, total: int) -> None:
            if stage not in bars:
                unit = " step" if stage == "ring detection" else " rows"
                bars[stage] = tqdm(desc=stage, total=total, unit=unit, unit_scale=True)
            bars[stage].update(n)

        with services(settings) as ep, open_store(ep.graph_url, settings=settings) as store:
            store.ensure_schema()
            res = load_world(store, data, as_of=at, on_progress=progress)  # type: ignore[arg-type]
        for bar in bars.values():
            bar.close()
        console.print(
            f"loaded {res.transactions:,} transactions ({res.ingested:,} new) and "
            f"{res.labels:,} labels; {res.rings:,} rings, {res.suspicious:,} suspicious"
        )

    @app.command()
    def neighbourhood(
        kind: Annotated[str, typer.Argument(help="user, card, device, ip or merchant.")],
        id: Annotated[str, typer.Argument(help="The entity id.")],
        hops: Annotated[int, typer.Option(help="How far to expand (1-6).")] = 2,
        max_nodes: Annotated[int, typer.Option(help="Stop after this many nodes.")] = 200,
        follow: Annotated[
            str | None,
            typer.Option(help="Comma-separated entity kinds to traverse (default: all)."),
        ] = None,
    ) -> None:
        """Show the k-hop neighbourhood of an entity: nodes, then the user-entity edges."""
        from fraudring.runtime import services
        from fraudring.settings import get_settings
        from graph.service import open_store

        kinds = [k.strip() for k in follow.split(",") if k.strip()] if follow else None
        settings = get_settings()
        with services(settings) as ep, open_store(ep.graph_url, settings=settings) as store:
            nb = store.neighbourhood(kind, id, hops=hops, max_nodes=max_nodes, follow=kinds)
        nodes = Table(title=f"{kind} {id}: {len(nb.nodes)} nodes within {hops} hops")
        for col in ("kind", "id", "fraud label", "fraud txns"):
            nodes.add_column(col)
        for n in nb.nodes:
            owner = n.props.get("account_of")  # a payee's account, not a shop
            nodes.add_row(
                f"account of {owner}" if owner else n.kind,
                n.id,
                str(n.props.get("fraud_label") or ""),
                str(n.props.get("fraud_txn_n") or 0),
            )
        console.print(nodes)
        edges = Table(title=f"{len(nb.edges)} edges")
        for col in ("user", "entity", "txns", "amount", "fraud", "last seen"):
            edges.add_column(col)
        for e in nb.edges:
            edges.add_row(
                e.user_id,
                f"{e.kind}:{e.entity_id}",
                str(e.n),
                f"{e.amount_sum:,.2f}",
                str(e.fraud_n),
                _when(e.last_seen),
            )
        console.print(edges)
        if nb.truncated:
            console.print(f"[yellow]stopped at {max_nodes} nodes (--max-nodes)[/yellow]")
