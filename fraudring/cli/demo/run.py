"""`fraudring demo`: the whole service end to end on one machine.

1. simulate a world with planted rings;
2. load its history (all but the last days) into the graph with the labels known by then, and
   find the rings;
3. train the GCN and XGBoost on that history and promote the model;
4. start the API and a Celery worker as processes, score every entity once;
5. replay the live days through the API in time order (the week before them first, to warm the
   velocity state), posting chargebacks as they arrive, while the worker streams decisions into
   the graph and pushes ring risk back to Redis;
6. write a report (Markdown + PNG) of what the service caught, and leave the investigator page
   running when asked.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import redis
from rich.console import Console

from fraudring.children import die_with_parent, stop_group
from fraudring.cli.demo.namespace import DEMO_OUT, demo_environment
from fraudring.cli.demo.replay import DemoError, Pacer, replay
from fraudring.errors import InvalidInput, Unavailable
from fraudring.logs import get_logger
from fraudring.runtime import Endpoints, free_port
from fraudring.settings import DEV_API_KEY, Settings

log = get_logger(__name__)
console = Console()
DAY = 86_400.0


@dataclass(frozen=True)
class DemoOptions:
    transactions: int
    seed: int
    live_days: float
    warmup_days: float
    out: Path
    port: int
    keep_serving: bool
    difficulty: str = "hard"
    #: Higher than the benchmark worlds' 0.2%: a minute's world must hold enough chargebacks for
    #: the retrain to learn rings that only the graph shows (at 0.2%, 100k transactions leave
    #: about five known frauds to choose thresholds on).
    fraud_rate: float = 0.01


@contextlib.contextmanager
def only_demo_in(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on `out` for the whole run: a second demo there would clear the
    first one's data, servers' files included, under it. The OS drops the lock if we die."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    with (out / "demo.lock").open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            raise DemoError(
                f"another demo is running with --out {out} (pid {pid}); stop it, or pass "
                "another --out"
            ) from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        yield


def step(title: str) -> None:
    console.rule(f"[bold]{title}")


# --- processes ------------------------------------------------------------------------------
@contextlib.contextmanager
def process(args: list[str], *, name: str, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child `fraudring` process (it inherits the resolved server URLs), stopped on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fraudring.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
            start_new_session=True,
            preexec_fn=die_with_parent,  # a kill -9 of the demo takes the child along
        )
        try:
            yield proc
        finally:
            stop_group(proc, grace_s=30)
            log.info("demo.process_stopped", name=name, code=proc.returncode)


def wait_http(
    url: str, *, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 90
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise Unavailable(f"the API process exited ({proc.returncode}):\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise Unavailable(f"the API did not answer at {url} within {timeout_s:.0f} s")


# --- replay ---------------------------------------------------------------------------------
def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")


def api_client(port: int) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": DEV_API_KEY}, timeout=60
    )


def pick_port(port: int) -> int:
    return port or free_port()


def endpoints_line(ep: Endpoints) -> str:
    origin = "embedded" if ep.embedded else "configured"
    return f"redis {ep.redis_url}, graph {ep.graph_url} ({origin})"


# --- the run --------------------------------------------------------------------------------
def split_history(world: Path, out: Path, *, live_from_us: int) -> dict[str, int]:
    """Write the part of `world` known before `live_from_us` as its own world (training data)."""
    from world.io import read_meta, read_world, write_world

    w = read_world(world)
    cut = pc.less(pc.cast(w.transactions["ts"], pa.int64()), live_from_us)
    txns = w.transactions.filter(cut)
    truth = w.truth.filter(cut)
    known = pc.less(pc.cast(w.labels["label_ts"], pa.int64()), live_from_us)
    labels = w.labels.filter(known)
    meta = {**read_meta(world), "history_of": world.name, "history_until_us": live_from_us}
    write_world(out, transactions=txns, labels=labels, truth=truth, meta=meta)
    return {"transactions": txns.num_rows, "labels": labels.num_rows}


def reset_namespace(settings: Settings) -> None:
    """Empty the demo's own key prefix and graph, so a second demo starts from a clean slate."""
    from graph.falkor import FalkorStore
    from graph.service import open_store
    from realtime import ops

    assert settings.redis_url is not None and settings.graph_url is not None
    ops.delete_prefix(redis.Redis.from_url(settings.redis_url), settings.redis_prefix)
    with open_store(settings.graph_url, settings=settings) as store:
        if isinstance(store, FalkorStore):
            store.drop()  # a graph of the demo's own name
        elif not store.is_empty():
            raise InvalidInput(
                "demo: the Neo4j database at the graph URL is not empty; the demo needs an "
                "empty one (it would mix its simulated world with your data)"
            )


def load_graph(settings: Settings, *, history: Path) -> dict[str, float]:
    """Bulk-load the history into the graph with the labels known by then."""
    from graph.ingest import BULK_BATCH, by_account
    from graph.service import open_store
    from world.io import iter_transactions, read_world

    assert settings.graph_url is not None
    t0 = time.perf_counter()
    n = 0
    with open_store(settings.graph_url, settings=settings) as store:
        store.ensure_schema()
        batches = by_account(iter_transactions(history, batch_size=BULK_BATCH))
        n = store.ingest_many(batches).ingested
        labels = read_world(history).labels
        at = pc.divide(pc.cast(pc.cast(labels["label_ts"], pa.int64()), pa.float64()), 1e6)
        for txn_id, lab, ts in zip(
            labels["txn_id"].to_pylist(), labels["label"].to_pylist(), at.to_pylist(), strict=True
        ):
            store.label(
                kind="txn",
                id=txn_id,
                label="fraud" if lab == 1 else "legitimate",
                by="chargebacks",
                at=ts,
            )
    return {"ingested": n, "labels": labels.num_rows, "seconds": time.perf_counter() - t0}


def wait_retrain(
    client: redis.Redis, settings: Settings, *, since: float, timeout_s: float = 1200
) -> dict[str, Any]:
    import orjson

    from realtime.keys import Keys

    key = Keys(settings.redis_prefix, partitions=settings.stream_partitions).meta("retrain:last")
    deadline = time.monotonic() + timeout_s
    with console.status("the worker trains the GCN and XGBoost, promotes, and scores every entity"):
        while time.monotonic() < deadline:
            raw = client.get(key)
            if raw:
                report: dict[str, Any] = orjson.loads(raw)
                if float(report.get("started_at", 0)) >= since:
                    return report
            time.sleep(1)
    raise DemoError(f"no retrain report within {timeout_s:.0f} s; see the worker log")


def reach_the_data(out: Path) -> None:
    """Tell how other commands see what the demo left: its namespace is not the default one."""
    env = demo_environment(out)
    if out.resolve() == DEMO_OUT.resolve():
        console.print(
            "\nAny command sees the demo's data with --demo, e.g. `fraudring --demo rings`, "
            "`fraudring --demo status`, `fraudring --demo models list`; that sets"
        )
    else:
        console.print("\nAny command sees this demo's data with these settings:")
    console.print(" ".join(f"{k}={v}" for k, v in env.items()), highlight=False, soft_wrap=True)


def run(opts: DemoOptions, settings: Settings, ep: Endpoints) -> dict[str, Any]:
    """The demo itself; `settings` already point at the resolved servers."""
    from fraudring.cli.demo.report import report
    from world.io import read_world
    from world.simulate import generate

    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"servers: {endpoints_line(ep)}")

    step("1. a world with planted rings")
    full = out / "world"
    summary = generate(
        out=full,
        transactions=opts.transactions,
        seed=opts.seed,
        difficulty=opts.difficulty,
        fraud_rate=opts.fraud_rate,
    )
    w = read_world(full)
    ts_us = pc.cast(w.transactions["ts"], pa.int64())
    end_us = int(pc.max(ts_us).as_py())
    live_from_us = int(end_us - opts.live_days * DAY * 1e6)
    warm_from_us = int(live_from_us - opts.warmup_days * DAY * 1e6)
    console.print(
        f"{summary.transactions:,} transactions, fraud rate {summary.fraud_rate:.3%}; "
        f"history until {utc(live_from_us / 1e6)}, live {opts.live_days:g} days after it"
    )

    reset_namespace(settings)

    step("2. history into the graph")
    hist = settings.data_dir / "world"  # the nightly retrain's training data
    counts = split_history(full, hist, live_from_us=live_from_us)
    g = load_graph(settings, history=hist)
    console.print(
        f"{counts['transactions']:,} transactions ({g['ingested'] / g['seconds']:,.0f}/s) and "
        f"{counts['labels']:,} labels known by then"
    )

    client = redis.Redis.from_url(ep.redis_url)
    port = pick_port(opts.port)
    logs = out / "logs"
    with (
        process(["worker", "--loglevel", "WARNING"], name="worker", log_path=logs / "worker.log"),
        process(["serve", "--port", str(port)], name="api", log_path=logs / "api.log") as api,
    ):
        step("3. nightly retrain on the history (run by the worker)")
        since = time.time()
        subprocess.run(
            [sys.executable, "-m", "fraudring.cli", "retrain"], check=True, capture_output=True
        )
        trained = wait_retrain(client, settings, since=since)
        console.print(
            f"outcome: {trained.get('outcome')}, model {trained.get('version')}; "
            f"rings scored: {trained.get('rescore', {}).get('rings')}"
        )
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=api, log_path=logs / "api.log")

        step("4. live replay through the API")
        sel = pc.greater_equal(ts_us, warm_from_us)
        txns = w.transactions.filter(sel)
        labels = w.labels.filter(
            pc.greater_equal(pc.cast(w.labels["label_ts"], pa.int64()), live_from_us)
        )
        with api_client(port) as http:
            pacer = Pacer(client=client, settings=settings, redis_url=ep.redis_url)
            live = replay(
                client=http,
                txns=txns,
                labels=labels,
                live_from=live_from_us / 1e6,
                console=console,
                pacer=pacer,
            )
        console.print(
            f"{len(live.txn_ids):,} live decisions (+ warm-up) at "
            f"{(txns.num_rows / live.seconds):,.0f}/s; {live.labels_posted:,} chargebacks posted; "
            f"{pacer.refreshes} statistics refreshes"
        )
        with console.status("the worker applies the last decisions and labels to the graph"):
            pacer.catch_up()
        result = report(
            settings=settings,
            world=w,
            live=live,
            trained=trained,
            out=out,
            client=client,
            port=port,
        )
        reach_the_data(opts.out)
        if opts.keep_serving:
            console.print(
                f"\nInvestigator page: http://127.0.0.1:{port}/investigate "
                f"(API key: {DEV_API_KEY}); Ctrl-C to stop."
            )
            with contextlib.suppress(KeyboardInterrupt):
                pacer.serve_labels(api)
    client.close()
    return result
