"""`fraudring rings`: the top rings by risk, and `rings export` (a ring or a neighbourhood as
CSV, JSON, GraphML or PNG for a case file)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fraudring.cli.tables import compact
from fraudring.errors import InvalidInput

console = Console()


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")


def register(app: typer.Typer) -> None:
    rings_app = typer.Typer(help="The top rings by risk (alone), and `rings export`.")
    app.add_typer(rings_app, name="rings")

    @rings_app.callback(invoke_without_command=True)
    def rings(
        ctx: typer.Context,
        top: Annotated[int, typer.Option(help="How many rings, by risk.", min=1, max=10_000)] = 20,
        detect: Annotated[
            bool, typer.Option("--detect", help="Run a full ring detection first.")
        ] = False,
        everything: Annotated[
            bool, typer.Option("--all", help="Also list groups that are not suspicious.")
        ] = False,
    ) -> None:
        """List the top rings by risk: size, labelled fraud, shared entities, activity."""
        if ctx.invoked_subcommand is not None:
            return
        from fraudring.runtime import services
        from fraudring.settings import get_settings
        from graph.service import open_store

        settings = get_settings()
        with services(settings) as ep, open_store(ep.graph_url, settings=settings) as store:
            if detect:
                up = store.detect_rings()
                console.print(
                    f"detected {len(up.rings)} rings in {up.seconds:.2f} s "
                    f"({len(up.created)} new, {len(up.removed)} removed)"
                )
            stored = store.top_rings(top)
            found = [r for r in stored if everything or r.suspicious]
            accounts = store.payee_accounts(
                {e.id for r in found for e in r.shared_entities if e.kind == "merchant"}
            )
        # Ring ids are what the next command takes: never cut, even in 80 columns.
        table = compact(
            f"top {len(found)} rings by risk",
            caption="fraud: members with a fraud label (*: flagged on its shape, most groups "
            "like it here turned out rings); shared: the entities that tie them, by "
            "kind (account: a payee's, paid by transfers; `fraudring neighbourhood` lists "
            "them); age: the members' mean account age in days; last: last activity (UTC)",
        )
        for col in ("ring", "risk", "fraud", "shared", "amount", "age", "last"):
            left = col in ("ring", "shared")
            table.add_column(col, justify="left" if left else "right", no_wrap=True)
        for r in found:
            kinds = Counter(
                "account" if e.kind == "merchant" and e.id in accounts else e.kind
                for e in r.shared_entities
            )
            table.add_row(
                r.id,
                f"{r.risk:.2f}",
                f"{r.fraud_n} of {r.size}" + ("*" if r.flagged_by == "shape" else ""),
                "\n".join(f"{n} {kind}" for kind, n in sorted(kinds.items())),
                f"{r.amount:,.0f}",
                f"{r.account_age_days:.1f}",
                _when(r.last_activity).replace(" ", "\n"),
            )
        console.print(table)
        if not stored:
            console.print("no rings stored: run `fraudring rings --detect` after ingesting")
        elif not found:
            console.print(
                f"none of the top {len(stored)} groups is suspicious (no two labelled members "
                "tied by unusual sharing, no shape that turned out rings here): `--all` lists them"
            )

    @rings_app.command("export")
    def export(
        ring_id: Annotated[str | None, typer.Argument(help="The ring's id.")] = None,
        around: Annotated[
            str | None, typer.Option(help="A neighbourhood instead: kind:id, e.g. user:u42.")
        ] = None,
        hops: Annotated[int, typer.Option(help="Neighbourhood hops (1-4).")] = 2,
        max_nodes: Annotated[int, typer.Option(help="Neighbourhood node cap.")] = 200,
        format: Annotated[str, typer.Option(help="csv, json, graphml or png.")] = "csv",
        out: Annotated[
            Path | None, typer.Option(help="File to write (default: NAME.FORMAT).")
        ] = None,
    ) -> None:
        """Write a ring (or a neighbourhood) to a file for a case."""
        from fraudring.runtime import services
        from fraudring.settings import get_settings
        from graph.formats import FORMATS, render, ring_subgraph
        from graph.repository import CypherStore
        from graph.service import open_store

        if format not in FORMATS:
            raise InvalidInput(f"--format: must be one of {', '.join(FORMATS)}")
        if (ring_id is None) == (around is None):
            raise InvalidInput("give a ring id or --around kind:id, not both")
        settings = get_settings()
        with services(settings) as ep, open_store(ep.graph_url, settings=settings) as store:
            assert isinstance(store, CypherStore)
            if ring_id is not None:
                sub, name = ring_subgraph(store, ring_id), ring_id
            else:
                assert around is not None
                kind, _, ident = around.partition(":")
                sub = store.neighbourhood(kind, ident, hops=hops, max_nodes=max_nodes)
                name = f"{kind}-{ident}"
            body = render(sub, format, title=name)
        path = out or Path(f"{name}.{format}")
        path.write_bytes(body)
        console.print(f"wrote {path} ({len(sub.nodes)} nodes, {len(sub.edges)} edges)")
