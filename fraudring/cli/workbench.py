"""`fraudring lists ...` (block / allow / step-up lists) and `fraudring rings export` (a ring or a
neighbourhood as CSV, JSON, GraphML or PNG for a case file).

`rings` stays the top-rings table when called alone; this module turns it into a group so that
`rings export` can sit under it (the table's options are the group's)."""

from __future__ import annotations

import asyncio
import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from fraudring.errors import InvalidInput

console = Console()
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> int:
    """`90s`, `30m`, `12h`, `7d` or plain seconds."""
    t = text.strip().lower()
    unit = UNITS.get(t[-1:])
    number = t[:-1] if unit else t
    try:
        value = float(number) * (unit or 1)
    except ValueError:
        raise InvalidInput(f"--ttl: {text!r} is not a duration like 90s, 30m, 12h or 7d") from None
    return int(value)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _run(coro_fn: Any) -> Any:
    """Run `coro_fn(client, keys)` against the resolved Redis (embedded when none is set)."""
    import redis.asyncio

    from fraudring.runtime import services
    from fraudring.settings import get_settings
    from realtime.keys import Keys

    settings = get_settings()

    async def go(url: str) -> Any:
        client = redis.asyncio.Redis.from_url(url)
        try:
            return await coro_fn(
                client, Keys(settings.redis_prefix, partitions=settings.stream_partitions)
            )
        finally:
            await client.aclose()

    with services(settings) as ep:
        return asyncio.run(go(ep.redis_url))


def _register_lists(app: typer.Typer) -> None:
    lists_app = typer.Typer(help="Block, allow and step-up lists.", no_args_is_help=True)
    app.add_typer(lists_app, name="lists")
    by_default = f"cli:{getpass.getuser()}"

    @lists_app.command("show")
    def show(
        action: Annotated[str | None, typer.Option(help="block, allow or step_up.")] = None,
        kind: Annotated[str | None, typer.Option(help="user, card, device, ip, merchant.")] = None,
    ) -> None:
        """The live entries, soonest expiry first."""
        from realtime import lists

        if action is not None and action not in lists.ACTIONS:
            raise InvalidInput(f"--action: must be one of {', '.join(lists.ACTIONS)}")
        page = _run(lambda c, k: lists.entries(c, k, action=action, kind=kind, limit=10_000))
        table = Table(title=f"{page.total} list entries")
        for col in ("list", "entity", "until", "by", "reason"):
            table.add_column(col, no_wrap=col != "reason")
        for e in page.entries:
            table.add_row(e.list, f"{e.kind}:{e.id}", _when(e.expires_at), e.by, e.reason)
        console.print(table)

    @lists_app.command("add")
    def add(
        action: Annotated[str, typer.Argument(help="block, allow or step_up.")],
        kind: Annotated[str, typer.Argument(help="user, card, device, ip or merchant.")],
        ids: Annotated[list[str], typer.Argument(help="One or more entity ids.")],
        reason: Annotated[str, typer.Option(help="Why; kept with the entry.")],
        ttl: Annotated[str, typer.Option(help="How long: 90s, 30m, 12h, 7d.")] = "7d",
        by: Annotated[str, typer.Option(help="Who adds it.")] = by_default,
    ) -> None:
        """Put entities on a list; the next decision on them honours it."""
        from pydantic import ValidationError

        from realtime import lists

        try:
            targets = [lists.ListTarget.model_validate({"kind": kind, "id": i}) for i in ids]
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InvalidInput(f"{err['loc'][0]}: {err['msg']}") from None
        out = _run(
            lambda c, k: lists.put(
                c,
                k,
                targets,
                action=cast(lists.ListAction, action),
                ttl_s=parse_ttl(ttl),
                reason=reason,
                by=by,
            )
        )
        for e in out:
            console.print(f"{e.list_name} {e.kind}:{e.id} until {_when(e.expires_at)}")

    @lists_app.command("remove")
    def remove(
        kind: Annotated[str, typer.Argument(help="user, card, device, ip or merchant.")],
        id: Annotated[str, typer.Argument(help="The entity id.")],
        reason: Annotated[str, typer.Option(help="Why; kept in the audit trail.")],
        by: Annotated[str, typer.Option(help="Who removes it.")] = by_default,
    ) -> None:
        """Take an entity off its list."""
        from realtime import lists

        e = _run(lambda c, k: lists.remove(c, k, kind, id, by=by, reason=reason))
        console.print(f"removed {kind}:{id} from the {e.list_name}")


def _register_export(app: typer.Typer) -> None:
    """Replace the `rings` command by a group running it when called alone."""
    table_cmd = next(
        c
        for c in app.registered_commands
        if c.name == "rings"
        or (c.name is None and c.callback is not None and c.callback.__name__ == "rings")
    )
    app.registered_commands.remove(table_cmd)
    original = table_cmd.callback
    assert original is not None
    rings_app = typer.Typer(help="The top rings by risk, and `rings export`.")
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
        if ctx.invoked_subcommand is None:
            original(top=top, detect=detect, everything=everything)

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


def register(app: typer.Typer) -> None:
    _register_lists(app)
    _register_export(app)
