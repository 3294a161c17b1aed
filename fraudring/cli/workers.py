"""`fraudring worker|beat|status|drift|retrain`, `fraudring deadletter list|retry`,
`fraudring labels import FILE`.

The workers run as their own processes (`celery -A workers.app`); these commands start them on
the resolved servers or talk to them through Redis, and never import the workers package.
"""

from __future__ import annotations

import math
import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fraudring.errors import InvalidInput, NotFound
from fraudring.settings import Settings, get_settings

console = Console()
QUEUES = ("ingest", "score", "train")
#: A Redis stream entry id: milliseconds, optionally a dash and a sequence number.
STREAM_ID = re.compile(r"[0-9]{1,20}(-[0-9]{1,20})?")


def _celery(ep_redis: str, settings: Settings) -> Any:
    from fraudring.runtime import celery_client

    return celery_client(ep_redis, settings.redis_prefix)


def _run(cmd: list[str]) -> int:
    """Run a child in the foreground, restarted if it crashes; SIGTERM or Ctrl-C stops it
    (warm) and waits for it."""
    from fraudring.children import run_child

    return run_child(cmd, restart=True)


def _fmt(value: float | None) -> str:
    return (
        "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"
    )


def _text(value: bytes | str) -> str:
    """Redis answers bytes; people read and copy text."""
    return value.decode() if isinstance(value, bytes) else value


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        queues: Annotated[str, typer.Option(help="Comma-separated queues.")] = ",".join(QUEUES),
        concurrency: Annotated[int, typer.Option(min=1, help="Worker threads.")] = 4,
        loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    ) -> None:
        """Start a Celery worker on the resolved Redis and graph (embedded when none is set)."""
        from fraudring.runtime import services

        unknown = {q.strip() for q in queues.split(",")} - set(QUEUES)
        if unknown:
            raise InvalidInput(f"--queues: unknown queue(s) {', '.join(sorted(unknown))}")
        settings = get_settings()
        with services(settings):
            cmd = [
                sys.executable, "-m", "celery", "-A", "workers.app", "worker",
                "-Q", queues, "--pool", "threads", "--concurrency", str(concurrency),
                "--loglevel", loglevel, "--without-gossip", "--without-mingle",
            ]  # fmt: skip
            raise typer.Exit(_run(cmd))

    @app.command()
    def beat(
        loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    ) -> None:
        """Start Celery beat: watchdog kicks, nightly retrain, daily drift check (settings)."""
        from fraudring.runtime import services

        settings = get_settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with services(settings):
            cmd = [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "-l", loglevel]
            raise typer.Exit(_run(cmd))

    @app.command()
    def status(
        accept_gap: Annotated[
            bool, typer.Option(help="Clear a reported replay gap (after dealing with it).")
        ] = False,
    ) -> None:
        """Queue lengths, decision-stream lag, freshness, replay gaps, last retrain and drift."""
        import redis

        from fraudring.runtime import services
        from realtime import ops
        from realtime.keys import Keys

        settings = get_settings()
        with services(settings) as ep:
            client = redis.Redis.from_url(ep.redis_url)
            keys = Keys(settings.redis_prefix, partitions=settings.stream_partitions)
            table = Table(title="fraudring status")
            table.add_column("figure")
            table.add_column("value", justify="right")
            for q, n in ops.queue_lengths(client, keys).items():
                table.add_row(f"queue {q}", str(n))
            lag = ops.decision_lag(client, keys)
            table.add_row("decision stream length", str(lag["length"]))
            table.add_row("lag: pending (delivered, not acked)", str(lag["pending"]))
            table.add_row("lag: not yet delivered", str(lag["undelivered"]))
            table.add_row("ingest consumers", str(lag["consumers"]))
            gap = ops.replay_gap(client, keys)
            if gap is not None and accept_gap:
                client.delete(keys.meta("replay_gap"))
                console.print(f"replay gap from {gap['replay_point']} accepted and cleared")
                gap = None
            table.add_row(
                "graph replay gap",
                "none" if gap is None else
                f"[red]entries from {gap['replay_point']} to {gap['trimmed_to']} were trimmed "
                "before the graph applied them[/red] (--accept-gap clears)",
            )  # fmt: skip
            recovery = ops.read_json(client, keys.meta("redis_recovery"))
            if recovery is not None:
                when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(recovery["at"]))
                table.add_row(
                    "last Redis restart with lost decisions",
                    f"{when}: {recovery['missing']} recorded again by the API",
                )
            fresh = ops.freshness_stats(client, keys)
            table.add_row(f"freshness p50 / p95 s (last {fresh['n']})",
                          f"{_fmt(fresh['p50_s'])} / {_fmt(fresh['p95_s'])}")  # fmt: skip
            table.add_row("dead letters", str(client.xlen(keys.deadletter)))
            last = ops.last_retrain(client, keys)
            if last is None:
                table.add_row("last retrain", "never")
            else:
                when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(last["finished_at"]))
                table.add_row("last retrain", f"{when}: {last.get('outcome', '?')}")
                for k, v in sorted((last.get("metrics") or {}).items()):
                    table.add_row(f"  {k}", _fmt(v) if isinstance(v, float) else str(v))
            d = ops.drift(client, keys)
            if d is not None:
                psi = f"{_fmt(d.get('max_feature_psi'))} / {_fmt(d.get('score_psi'))}"
                table.add_row("drift: max feature PSI / score PSI", psi)
                table.add_row("drift: bound crossed", str(bool(d.get("breached"))))
            console.print(table)
            client.close()

    @app.command()
    def drift() -> None:
        """Queue a drift check now (PSI of features and scores, recall/precision on labels)."""
        _send("fraudring.drift.check", queue="train")

    @app.command()
    def retrain() -> None:
        """Queue a retrain now (export, train, evaluate, promote or keep, rescore, report)."""
        _send("fraudring.train.retrain", queue="train")

    def _send(name: str, *, queue: str, args: list[Any] | None = None, kwargs: Any = None) -> None:
        from fraudring.runtime import services

        settings = get_settings()
        with services(settings) as ep:
            res = _celery(ep.redis_url, settings).send_task(
                name, args=args or [], kwargs=kwargs or {}, queue=queue
            )
            console.print(f"queued {name} ({res.id}) on queue {queue}")

    dl = typer.Typer(help="Messages and tasks that kept failing, with their reason.")
    app.add_typer(dl, name="deadletter")

    @dl.command("list")
    def dl_list(
        count: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    ) -> None:
        """Show the newest dead-letter entries."""
        import redis

        from fraudring.runtime import services
        from realtime import ops
        from realtime.keys import Keys

        settings = get_settings()
        with services(settings) as ep:
            client = redis.Redis.from_url(ep.redis_url)
            entries = ops.deadletters(
                client,
                Keys(settings.redis_prefix, partitions=settings.stream_partitions),
                count=count,
            )
            table = Table(title=f"dead letters ({len(entries)} shown)")
            for col in ("id", "kind", "what", "attempts", "reason"):
                table.add_column(col, overflow="fold")
            for e in entries:
                what = e.get("task") or f"{e.get('stream', '?')} {e.get('msg_id', '')}"
                reason = e.get("error") or e.get("reason") or ""
                table.add_row(e["id"], e.get("kind", "?"), what, str(e.get("attempts", "")), reason)
            console.print(table)

    @dl.command("retry")
    def dl_retry(entry_id: Annotated[str, typer.Argument(help="Dead-letter entry id.")]) -> None:
        """Send an entry back: a message to its stream, a task to its queue; then remove it."""
        import orjson
        import redis

        from fraudring.runtime import services
        from realtime.keys import Keys

        if not STREAM_ID.fullmatch(entry_id):
            raise InvalidInput(
                f"dead-letter entry {entry_id!r}: not an entry id (like 1733400000000-0; "
                "`fraudring deadletter list` shows them)"
            )
        settings = get_settings()
        keys = Keys(settings.redis_prefix, partitions=settings.stream_partitions)
        with services(settings) as ep:
            client = redis.Redis.from_url(ep.redis_url)
            found = client.xrange(keys.deadletter, min=entry_id, max=entry_id)
            if not found:
                raise NotFound(f"dead-letter entry {entry_id!r} not found")
            body = orjson.loads((found[0][1] or {})[b"d"])
            if body.get("kind") == "message":
                stream = str(body["stream"])
                if not stream.startswith(settings.redis_prefix):
                    raise InvalidInput(f"entry {entry_id} names a stream outside this prefix")
                new_id = client.xadd(stream, {"d": body["raw"].encode()})
                console.print(f"message re-added to {stream} as {_text(new_id)}")
            else:
                res = _celery(ep.redis_url, settings).send_task(
                    body["task"], args=body.get("args") or [], kwargs=body.get("kwargs") or {},
                    queue=body.get("queue") or "score",
                )  # fmt: skip
                console.print(f"task {body['task']} re-sent ({res.id})")
            client.xdel(keys.deadletter, entry_id)

    labels = typer.Typer(help="Fraud / legitimate labels for transactions and entities.")
    app.add_typer(labels, name="labels")

    @labels.command("import")
    def labels_import(
        file: Annotated[
            Path,
            typer.Argument(
                help="CSV with columns kind,id,label[,at] (at: ISO 8601 with a zone, or epoch "
                "seconds; now when empty)."
            ),
        ],
        by: Annotated[str, typer.Option(help="Who labelled (recorded on the graph).")] = "import",
    ) -> None:
        """Queue labels from a CSV; the workers apply them and rescore the affected rings.

        The whole file is checked first (every bad row reported with its line, nothing queued);
        labels for ids the graph does not hold are reported and not queued."""
        import redis

        from fraudring.runtime import services
        from graph.service import open_store
        from realtime.keys import Keys
        from realtime.labels import publish_labels, read_label_csv

        settings = get_settings()
        rows = read_label_csv(file, by=by)  # validate the whole file first
        if not rows:
            raise InvalidInput(f"{file}: no label rows")
        with services(settings) as ep:
            with open_store(ep.graph_url, settings=settings) as store:
                kinds = {r.record.kind for r in rows}
                known = {
                    k: store.known(k, {r.record.id for r in rows if r.record.kind == k})
                    for k in kinds
                }
            unknown = [r for r in rows if r.record.id not in known[r.record.kind]]
            good = [r.record for r in rows if r.record.id in known[r.record.kind]]
            client = redis.Redis.from_url(ep.redis_url)
            ids = publish_labels(
                client, Keys(settings.redis_prefix, partitions=settings.stream_partitions), good
            )
            if ids:
                _celery(ep.redis_url, settings).send_task("fraudring.labels.kick", queue="score")
            console.print(f"{len(ids)} label(s) queued on the labels stream")
            for r in unknown[:50]:
                typer.echo(
                    f"{file}:{r.line}: {r.record.kind} {r.record.id!r} is not in the graph "
                    "(not ingested yet?): not queued",
                    err=True,
                )
            if unknown:
                typer.echo(f"{len(unknown)} label(s) for unknown ids not queued", err=True)
