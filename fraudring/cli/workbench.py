"""`fraudring lists ...`: the block / allow / step-up lists the decision engine honours."""

from __future__ import annotations

import asyncio
import getpass
from datetime import UTC, datetime
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


def register(app: typer.Typer) -> None:
    _register_lists(app)
