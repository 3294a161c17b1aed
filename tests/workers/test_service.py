"""Pipeline library functions against real Redis and embedded FalkorDB (no Celery here)."""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import orjson
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudring.errors import InvalidInput
from fraudring.settings import Settings
from graph.repository import GraphStore
from graph.schemas import EntityRef, Ring
from graph.service import open_store
from realtime import ops
from realtime.keys import DECISION_GROUP, GraphRisk, Keys
from realtime.labels import LabelRecord, publish_labels, read_label_csv
from tests.support.realtime import stream_entries
from tests.support.workers import T0, decision, graph_overrides, small_world, xadd_all
from workers.ingest import parse_decision, to_record
from workers.retrain import rescore_all
from workers.scoring import heuristic_scorer, plan_risks
from workers.service import Pipeline, drain_decisions, drain_labels
from workers.streams import READ_CHUNK, Message, ack, fetch, validation_reason


def _ring(rid: str, members: list[str], entities: list[tuple[str, str]], risk: float) -> Ring:
    return Ring(
        id=rid, size=len(members), suspicious=True, members=members,
        shared_entities=[EntityRef(kind=k, id=i) for k, i in entities],
        density=1.0, fraud_n=0, fraud_rate=0.0, amount=0.0, account_age_days=1.0,
        first_activity=0.0, last_activity=0.0, risk=risk, created_at=0.0, updated_at=0.0,
    )  # fmt: skip


# -- parsing ---------------------------------------------------------------------------------
def test_valid_decision_parses_to_graph_record() -> None:
    rec = decision("t1", user="u1", ts=T0, card="c1", device=None, ip="10.0.0.1", merchant="m1")
    d = parse_decision(Message(id="1-0", raw=orjson.dumps(rec)))
    r = to_record(d)
    assert (r.txn_id, r.user_id, r.card_id, r.device_id, r.ts) == ("t1", "u1", "c1", None, T0)


@given(
    extra=st.text(min_size=1, max_size=12).filter(
        lambda k: k not in {"txn", "decision", "score", "decided_at", "model_version", "degraded"}
    )
)
def test_unknown_field_is_rejected_with_its_name(extra: str) -> None:
    rec = {**decision("t1", user="u1", ts=T0), extra: 1}
    with pytest.raises(ValueError) as exc:
        parse_decision(Message(id="1-0", raw=orjson.dumps(rec)))
    assert "Extra inputs are not permitted" in validation_reason(exc.value)


@given(raw=st.binary(max_size=64))
@settings(max_examples=50)
def test_garbage_never_parses(raw: bytes) -> None:
    with pytest.raises((ValueError, orjson.JSONDecodeError)):
        parse_decision(Message(id="1-0", raw=raw))


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r["txn"].pop("user_id"), "txn.user_id"),
        (lambda r: r["txn"].update(amount="lots"), "txn.amount"),
        (lambda r: r.update(decision="maybe"), "decision"),
        (lambda r: r["txn"].update(ts="yesterday"), "txn.ts"),
    ],
)
def test_reason_names_the_field(mutate: Callable[[dict[str, object]], object], field: str) -> None:
    rec = decision("t1", user="u1", ts=T0)
    mutate(rec)
    with pytest.raises(ValueError) as exc:
        parse_decision(Message(id="1-0", raw=orjson.dumps(rec)))
    assert validation_reason(exc.value).startswith(field)


def test_missing_d_field_is_a_reason() -> None:
    with pytest.raises(ValueError, match="no field 'd'"):
        parse_decision(Message(id="1-0", raw=None))


# -- risk plan -------------------------------------------------------------------------------
def test_entity_in_two_rings_keeps_the_riskier() -> None:
    a = _ring("ra", ["u1", "u2"], [("device", "d1")], 0.3)
    b = _ring("rb", ["u2", "u3", "u4"], [("card", "c9")], 0.8)
    scores, version = heuristic_scorer([a, b])
    plan = plan_risks([a, b], scores, model_version=version, now=1.0)
    assert plan.risks[("user", "u2")].ring_id == "rb"
    assert plan.risks[("user", "u1")].score == 0.3
    assert plan.risks[("device", "d1")].ring_size == 2
    assert set(plan.risks) == {("user", u) for u in ("u1", "u2", "u3", "u4")} | {
        ("device", "d1"),
        ("card", "c9"),
    }


# -- labels CSV ------------------------------------------------------------------------------
def test_label_csv_bad_row_names_its_line(tmp_path: Path) -> None:
    f = tmp_path / "labels.csv"
    f.write_text("kind,id,label\nuser,u1,fraud\nuser,u2,maybe\n")
    with pytest.raises(InvalidInput, match=r"labels.csv:3: label"):
        list(read_label_csv(f, by="t"))
    f.write_text("id,label\nu1,fraud\n")
    with pytest.raises(InvalidInput, match="kind"):
        list(read_label_csv(f, by="t"))
    # an id the graph store cannot take, and a short row, are refused with their line
    f.write_text('kind,id,label\nuser,"u\x01x",fraud\n')
    with pytest.raises(InvalidInput, match=r"labels.csv:2: id: must contain printable"):
        list(read_label_csv(f, by="t"))
    f.write_text("kind,id,label\nuser,u1\n")
    with pytest.raises(InvalidInput, match=r"labels.csv:2: label"):
        list(read_label_csv(f, by="t"))
    f.write_bytes(b"kind,id,label\nuser,u\xff,fraud\n")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        list(read_label_csv(f, by="t"))


def test_label_csv_reports_every_bad_row_and_takes_iso_times(tmp_path: Path) -> None:
    f = tmp_path / "labels.csv"
    f.write_text(
        "kind,id,label,at\n"
        "user,u1,fraud,2026-11-25T18:00:00Z\n"
        "user,u2,maybe,\n"
        "txn,t1,fraud,2026-11-25T19:00:00+01:00\n"
        "card,c1,fraud,2026-11-25T18:00:00\n"
        "user,u-1 ,fraud,1780000000\n"
        "planet,p1,fraud,\n"
        "device,d1,legitimate,yesterday\n"
    )
    with pytest.raises(InvalidInput) as info:
        read_label_csv(f, by="t")
    lines = info.value.message.splitlines()
    assert [int(x.split(":")[1]) for x in lines[:-1]] == [3, 5, 6, 7, 8]
    assert "needs its zone" in lines[1] and "whitespace" in lines[2]
    assert lines[-1] == "5 bad row(s); nothing queued"
    f.write_text("kind,id,label,at\nuser,u1,fraud,2026-11-25T18:00:00Z\ntxn,t1,fraud,1795629600\n")
    rows = read_label_csv(f, by="t")
    assert [(r.line, r.record.at) for r in rows] == [(2, 1795629600.0), (3, 1795629600.0)]


def test_the_store_says_which_ids_it_holds(pipe: Pipeline) -> None:
    keys = Keys(pipe.settings.redis_prefix)
    xadd_all(pipe.client, keys.decisions_stream, small_world(users=3, txns=5))
    drain_decisions(pipe, consumer="c1", max_seconds=30, block_ms=50)
    store = cast(GraphStore, pipe.store)
    assert store.known("txn", {"t000000", "t000004", "nope"}) == {"t000000", "t000004"}
    assert store.known("user", {"u0", "u1", "u2", "ghost"}) <= {"u0", "u1", "u2"}
    assert "ghost" not in store.known("user", {"ghost"})
    with pytest.raises(InvalidInput):
        store.known("planet", {"x"})


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_label_csv_takes_any_file_without_a_traceback(data: bytes) -> None:
    """Whatever the file holds: records, or one InvalidInput naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "any.csv"
        f.write_bytes(b"kind,id,label,at\n" + data)
        try:
            records = read_label_csv(f, by="t")
        except InvalidInput as exc:
            refused: str | None = str(exc)
            records = []
        else:
            refused = None
    assert refused is None or refused.startswith(str(f))
    assert all(r.record.id.strip() and r.record.id.isprintable() for r in records)


# -- streams ---------------------------------------------------------------------------------
def test_pending_messages_of_a_dead_consumer_are_reclaimed(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    stream = f"{redis_prefix}s"
    redis_client.xgroup_create(stream, "g", id="0", mkstream=True)
    for i in range(5):
        redis_client.xadd(stream, {"d": str(i)})
    first = fetch(
        redis_client,
        stream=stream,
        group="g",
        consumer="dead",
        count=3,
        block_ms=10,
        claim_idle_ms=60_000,
    )
    assert [m.raw for m in first] == [b"0", b"1", b"2"]
    # "dead" never acks; a new consumer gets its 3 (once idle) before the 2 new ones
    again = fetch(
        redis_client,
        stream=stream,
        group="g",
        consumer="alive",
        count=10,
        block_ms=10,
        claim_idle_ms=0,
    )
    assert sorted(m.raw or b"" for m in again) == [b"0", b"1", b"2", b"3", b"4"]


class _Counting(redis.Redis):
    """A client of the real Redis that notes each stream command's size (COUNT, or ids acked)."""

    sizes: list[tuple[str, int]]

    def execute_command(self, *args: object, **options: object) -> object:
        words = [(a.decode() if isinstance(a, bytes) else str(a)).upper() for a in args]
        name = words[0]
        if name in ("XREADGROUP", "XAUTOCLAIM"):
            self.sizes.append((name, int(words[words.index("COUNT") + 1])))
        elif name == "XACK":
            self.sizes.append((name, len(args) - 3))
        return super().execute_command(*args, **options)


def test_a_big_batch_is_read_and_acknowledged_in_bounded_commands(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    """Before: one XREADGROUP of a 5,000-decision batch held Redis for ~30 ms, past a decision's
    Redis budget, so the API decided without velocity meanwhile."""
    client = _Counting(connection_pool=redis_client.connection_pool)
    client.sizes = []
    stream = f"{redis_prefix}big"
    client.xgroup_create(stream, "g", id="0", mkstream=True)
    pipe = client.pipeline(transaction=False)
    for i in range(3 * READ_CHUNK):
        pipe.xadd(stream, {"d": str(i)})
    pipe.execute()
    got = fetch(
        client, stream=stream, group="g", consumer="c", count=2 * READ_CHUNK + 7, block_ms=10,
        claim_idle_ms=60_000,
    )  # fmt: skip
    assert [m.raw for m in got] == [str(i).encode() for i in range(2 * READ_CHUNK + 7)]
    ack(client, stream, "g", [m.id for m in got])
    assert client.xpending(stream, "g")["pending"] == 0
    assert max(n for _, n in client.sizes) <= READ_CHUNK
    assert {name for name, _ in client.sizes} == {"XAUTOCLAIM", "XREADGROUP", "XACK"}


# -- the pipeline on the real graph ----------------------------------------------------------
@pytest.fixture(params=["falkordb", "neo4j"])
def pipe(
    request: pytest.FixtureRequest,
    make_settings: Callable[..., Settings],
    redis_client: redis.Redis,
) -> Iterator[Pipeline]:
    """The pipeline on each graph store: stream -> graph -> ring risk in Redis."""
    s = make_settings(
        ingest_batch=100, alert_ring_size=4, **graph_overrides(request.param, request)
    )
    assert s.graph_url is not None
    with open_store(s.graph_url, settings=s) as store:
        store.ensure_schema()
        yield Pipeline(client=redis_client, store=store, settings=s, scorer=heuristic_scorer)


def test_drain_ingests_once_scores_rings_and_deadletters_bad(pipe: Pipeline) -> None:
    keys = Keys(pipe.settings.redis_prefix)
    world = small_world(users=20, txns=300)
    xadd_all(pipe.client, keys.decisions_stream, world[:150])
    pipe.client.xadd(keys.decisions_stream, {"d": b"{not json"})
    pipe.client.xadd(keys.decisions_stream, {"d": orjson.dumps({**world[0], "surprise": 1})})
    xadd_all(pipe.client, keys.decisions_stream, world[150:] + world[:50])  # 50 redelivered
    stats = drain_decisions(pipe, consumer="c1", max_seconds=60, block_ms=50)
    assert stats.ingested == 300 and stats.duplicates == 50 and stats.deadlettered == 2
    assert ops.decision_lag(pipe.client, keys)["pending"] == 0
    dl = ops.deadletters(pipe.client, keys)
    reasons = sorted(e["reason"] for e in dl)
    assert reasons[0].startswith("malformed JSON") and "surprise" in reasons[1]
    # graph holds each transaction exactly once: re-ingesting everything adds nothing
    assert (
        pipe.store.ingest(
            [to_record(parse_decision(Message("x", orjson.dumps(r)))) for r in world]
        ).ingested
        == 0
    )
    # the first ringed users share ring-dev0: they have a ring risk in Redis
    raw = pipe.client.get(keys.risk("user", "u0"))
    assert raw is not None
    risk = GraphRisk.loads(raw)
    assert risk.ring_id is not None and risk.ring_size >= 2 and 0 <= risk.score <= 1
    assert pipe.client.get(keys.risk("device", "ring-dev0")) is not None
    assert pipe.client.get(keys.risk("user", "u19")) is None  # not ringed
    fresh = ops.freshness_stats(pipe.client, keys)
    assert fresh["n"] == 300 + 50 and not math.isnan(fresh["p95_s"])
    kinds = Counter(
        orjson.loads(f[b"d"])["kind"] for _, f in stream_entries(pipe.client, keys.alerts_stream)
    )
    # The groups are big enough to alert on their size, but with no label yet nothing makes them
    # suspicious (flags come from labels, graph.evidence): no new-ring alert.
    assert kinds["ring_grown"] >= 1 and kinds["new_ring"] == 0


def test_a_transfer_drained_from_the_stream_ties_its_payee_in_the_graph(pipe: Pipeline) -> None:
    keys = Keys(pipe.settings.redis_prefix)
    transfers = [
        decision("x1", user="p1", ts=T0, payee="q1"),
        decision("x2", user="p2", ts=T0 + 60, payee="q1", merchant="acct-q1"),
    ]
    xadd_all(pipe.client, keys.decisions_stream, transfers)
    assert drain_decisions(pipe, consumer="c1", max_seconds=30, block_ms=50).ingested == 2
    for account, payers in (("q1", {"p1", "q1"}), ("acct-q1", {"p2", "q1"})):
        nb = pipe.store.neighbourhood("merchant", account, hops=1, max_nodes=100)
        assert {n.id for n in nb.nodes if n.kind == "user"} == payers
    # three accounts paying a fourth twice each: the payee is in their ring, and has its risk
    fan_in = [
        decision(f"f{p}{k}", user=f"s{p}", ts=T0 + 600 * k + p, payee="sink")
        for p in range(3)
        for k in range(2)
    ]
    xadd_all(pipe.client, keys.decisions_stream, fan_in)
    assert drain_decisions(pipe, consumer="c1", max_seconds=30, block_ms=50).ingested == 6
    raw = pipe.client.get(keys.risk("user", "sink"))
    assert raw is not None and GraphRisk.loads(raw).ring_size == 4


def test_labels_apply_to_graph_and_rescore_the_ring(pipe: Pipeline) -> None:
    keys = Keys(pipe.settings.redis_prefix)
    xadd_all(pipe.client, keys.decisions_stream, small_world(users=20, txns=200))
    drain_decisions(pipe, consumer="c1", max_seconds=60, block_ms=50)
    before = GraphRisk.loads(pipe.client.get(keys.risk("user", "u1")) or b"")
    members = cast(GraphStore, pipe.store).ring(before.ring_id or "").members
    recs = [
        LabelRecord(kind="user", id=u, label="fraud", by="test", at=T0 + 500) for u in members[1:]
    ]
    txn_of_first = next(
        r["txn"]["txn_id"]
        for r in small_world(users=20, txns=200)
        if r["txn"]["user_id"] == members[0]
    )
    recs.append(LabelRecord(kind="txn", id=txn_of_first, label="fraud", by="test", at=T0 + 500))
    publish_labels(pipe.client, keys, recs)
    pipe.client.xadd(
        keys.labels_stream,
        {
            "d": orjson.dumps(
                {"kind": "user", "id": "nobody", "label": "fraud", "by": "t", "at": 1.0}
            )
        },
    )
    assert drain_labels(pipe, consumer="c1", max_seconds=30) == len(members)
    after = GraphRisk.loads(pipe.client.get(keys.risk("user", "u1")) or b"")
    assert after.ring_fraud_rate == 1.0 and after.score > before.score
    assert any("nobody" in e["reason"] for e in ops.deadletters(pipe.client, keys))


def test_group_lag_counts_pending_and_undelivered(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    xadd_all(redis_client, keys.decisions_stream, small_world(users=5, txns=10))
    redis_client.xgroup_create(keys.decisions_stream, DECISION_GROUP, id="0")
    redis_client.xreadgroup(DECISION_GROUP, "c", {keys.decisions_stream: ">"}, count=4)
    assert ops.decision_lag(redis_client, keys) == {
        "length": 10,
        "pending": 4,
        "undelivered": 6,
        "consumers": 1,
    }


def test_a_dissolved_ring_leaves_no_stale_risk(pipe: Pipeline) -> None:
    keys = Keys(pipe.settings.redis_prefix)
    xadd_all(pipe.client, keys.decisions_stream, small_world(users=20, txns=200))
    drain_decisions(pipe, consumer="c", max_seconds=60, block_ms=50)
    ring_id = GraphRisk.loads(pipe.client.get(keys.risk("user", "u0")) or b"").ring_id
    assert ring_id is not None
    # thirty strangers on the ring's device make it a hub (graph.rings): it links nobody now
    crowd = [
        decision(
            f"x{i}",
            user=f"stranger{i}",
            ts=T0 + 1000 + i,
            card=f"sc{i}",
            device="ring-dev0",
            ip=f"10.9.{i}.1",
            merchant=f"mx{i}",
        )
        for i in range(30)
    ]
    xadd_all(pipe.client, keys.decisions_stream, crowd)
    drain_decisions(pipe, consumer="c", max_seconds=60, block_ms=50)
    # the incremental run starts from the strangers, who link nobody; the nightly full run
    # (workers.retrain.rescore_all) sees the ring gone and its members' risk goes with it
    assert rescore_all(pipe)["rings"] >= 1
    left = pipe.client.get(keys.risk("user", "u0"))
    assert left is None or GraphRisk.loads(left).ring_id != ring_id
    assert pipe.client.ttl(keys.risk("user", "u6")) > 30 * 86400  # other rings' risks expire


def test_delete_prefix_removes_only_its_namespace(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    for i in range(1200):  # more than one delete chunk
        redis_client.set(f"{redis_prefix}k{i}", i)
    redis_client.set(f"{redis_prefix[:-1]}-other:k", 1)
    assert ops.delete_prefix(redis_client, redis_prefix) == 1200
    assert not list(redis_client.scan_iter(match=f"{redis_prefix}*"))
    assert redis_client.get(f"{redis_prefix[:-1]}-other:k") == b"1"
    redis_client.delete(f"{redis_prefix[:-1]}-other:k")


# -- poison messages -------------------------------------------------------------------------
def test_an_id_the_store_cannot_hold_is_deadlettered_and_the_store_survives(
    pipe: Pipeline,
) -> None:
    """A user id with a trailing space crashed FalkorDB 4.16 (signal 11 in EnforceUniqueEntity)
    when written, again after every restart: the stream contract refuses it, and the store
    itself refuses it whoever calls it."""
    keys = Keys(pipe.settings.redis_prefix)
    good = small_world(users=3, txns=5)
    poison = [decision("p1", user="u-1 ", ts=T0), decision("p2", user=" u-2", ts=T0)]
    xadd_all(pipe.client, keys.decisions_stream, poison + good)
    stats = drain_decisions(pipe, consumer="c1", max_seconds=30, block_ms=50)
    assert stats.deadlettered == 2 and stats.ingested == 5
    reasons = [e["reason"] for e in ops.deadletters(pipe.client, keys)]
    assert all("txn.user_id" in r and "whitespace" in r for r in reasons)
    assert pipe.store.is_empty() is False  # the store still answers
    bad = to_record(parse_decision(Message("x", orjson.dumps(good[0])))).__class__(
        "p3", T0, "u-1 ", None, None, None, None, 1.0
    )
    with pytest.raises(InvalidInput, match="user_id: must not start or end with whitespace"):
        pipe.store.ingest([bad])


class _PoisonedStore:
    """The real store, except that writing txn 'poison' fails as a crashing server would."""

    def __init__(self, store: object) -> None:
        self.store = store
        self.fail = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def ingest(self, records: list[object]) -> object:
        if any(getattr(r, "txn_id", None) == "poison" for r in records):
            self.fail += 1
            from fraudring.errors import Unavailable

            raise Unavailable("graph store unreachable: Connection closed by server.")
        return self.store.ingest(records)  # type: ignore[attr-defined]


def test_a_message_that_fails_twice_is_quarantined_not_retried_forever(
    pipe: Pipeline, make_settings: Callable[..., Settings]
) -> None:
    import time

    from fraudring.errors import Unavailable

    keys = Keys(pipe.settings.redis_prefix)
    s = make_settings(ingest_batch=100, ingest_claim_idle_ms=100, ingest_linger_ms=0)
    poisoned = _PoisonedStore(pipe.store)
    p = Pipeline(client=pipe.client, store=poisoned, settings=s, scorer=heuristic_scorer)  # type: ignore[arg-type]
    xadd_all(pipe.client, keys.decisions_stream, [decision("poison", user="u9", ts=T0)])
    xadd_all(pipe.client, keys.decisions_stream, small_world(users=3, txns=4))
    for _ in range(2):  # delivered, fails; redelivered, fails
        with pytest.raises(Unavailable):
            drain_decisions(p, consumer="c1", max_seconds=5, block_ms=10)
        time.sleep(0.15)
    stats = drain_decisions(p, consumer="c1", max_seconds=5, block_ms=10)
    assert stats.ingested == 4 and stats.deadlettered == 1
    (entry,) = ops.deadletters(pipe.client, keys)
    assert entry["reason"].startswith("quarantined after 3 deliveries")
    assert ops.decision_lag(pipe.client, keys)["pending"] == 0
    assert drain_decisions(p, consumer="c1", max_seconds=1, block_ms=10).messages == 0
    assert poisoned.fail == 3
