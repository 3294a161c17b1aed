"""A ring's history as events: the pure diff between runs, then a hand-built sequence of
detections on every backend that grows, splits and merges one ring."""

from __future__ import annotations

from graph import queries as q
from graph.repository import CypherStore
from graph.ringevents import KEEP_S, assign_ids, diff, props
from graph.schemas import RingEvent, TxnRecord

DAY = 86400.0
T0 = 1_750_000_000.0


def kinds(events: list[RingEvent]) -> list[tuple[str, str, list[str], list[str]]]:
    return [(e.ring_id, e.kind, e.joined or e.left, e.related) for e in events]


def test_diff_names_each_change() -> None:
    at = {"at": T0, "as_of": T0}
    assert kinds(diff({}, {"r": ["a", "b"]}, **at)) == [("r", "appeared", ["a", "b"], [])]
    assert diff({"r": ["a", "b"]}, {"r": ["b", "a"]}, **at) == []
    grew = diff({"r": ["a", "b"]}, {"r": ["a", "b", "c"]}, **at)
    assert kinds(grew) == [("r", "grew", ["c"], [])] and grew[0].size == 3
    assert kinds(diff({"r": ["a", "b", "c"]}, {"r": ["a", "b"]}, **at)) == [
        ("r", "shrank", ["c"], [])
    ]
    split = diff({"r": ["a", "b", "c", "d", "e"]}, {"r": ["a", "b", "c"], "s": ["d", "e"]}, **at)
    assert kinds(split) == [
        ("r", "split", ["d", "e"], ["s"]),
        ("s", "split_off", ["d", "e"], ["r"]),
    ]
    merged = diff({"r": ["a", "b", "c"], "s": ["d", "e"]}, {"r": ["a", "b", "c", "d", "e"]}, **at)
    assert kinds(merged) == [
        ("r", "merged", ["d", "e"], ["s"]),
        ("s", "merged_into", ["d", "e"], ["r"]),
    ]
    assert merged[1].size == 0 and [e.seq for e in merged] == [0, 1]
    # the same change seen by another run at once has the same ids (kept once)
    twice = diff({"r": ["a", "b", "c"], "s": ["d", "e"]}, {"r": list("abcde")}, at=T0 + 1, as_of=T0)
    assert [e.id for e in twice] == [e.id for e in merged] and len({e.id for e in merged}) == 2
    assert kinds(diff({"r": ["a", "b"]}, {}, **at)) == [("r", "dissolved", ["a", "b"], [])]
    # a merge that also brings a newcomer: the newcomer grew the ring, the rest merged in
    both = diff({"r": ["a", "b"], "s": ["c", "d"]}, {"r": ["a", "b", "c", "d", "x"]}, **at)
    assert kinds(both) == [
        ("r", "merged", ["c", "d"], ["s"]),
        ("r", "grew", ["x"], []),
        ("s", "merged_into", ["c", "d"], ["r"]),
    ]


def test_ids_stay_with_the_larger_part() -> None:
    old = {"r": (T0, ["a", "b", "c", "d", "e"])}
    assert assign_ids([["d", "e"], ["a", "b", "c"]], old)[1] == "r"


def tx(i: str, user: str, device: str, ts: float) -> TxnRecord:
    return TxnRecord(i, ts, user, f"card-{user}", device, None, None, 10.0)


def test_detection_runs_record_a_ring_growing_splitting_and_merging(store: CypherStore) -> None:
    # p1-p2 on dP, p3-p4 on dQ, bridged by p2-p3 on dBr 25 days back: one ring of four
    store.ingest(
        [
            tx("1", "p1", "dP", T0),
            tx("2", "p2", "dP", T0),
            tx("3", "p3", "dQ", T0),
            tx("4", "p4", "dQ", T0),
            tx("5", "p2", "dBr", T0 - 25 * DAY),
            tx("6", "p3", "dBr", T0 - 25 * DAY),
        ]
    )
    up = store.detect_rings(now=T0)
    (rid,) = [r.id for r in up.rings]
    assert up.events == 1
    store.ingest([tx("7", "p5", "dQ", T0 + 60)])
    store.detect_rings(now=T0 + 60)
    # ten days on, the bridge is out of the window: the ring splits, the bigger part keeps its id
    split = store.detect_rings(now=T0 + 10 * DAY)
    assert {r.id: sorted(r.members) for r in split.rings}[rid] == ["p3", "p4", "p5"]
    (sid,) = split.created
    assert store.detect_rings(now=T0 + 10 * DAY).events == 0  # nothing changed, nothing kept
    # p1 turns up on dQ: an incremental run merges the two back under the ring's id
    store.ingest([tx("8", "p1", "dQ", T0 + 10 * DAY)])
    merged = store.detect_rings(touched_users=["p1"], now=T0 + 10 * DAY)
    assert merged.removed == [sid]
    events = store.ring_events(rid)
    assert kinds(events) == [
        (rid, "appeared", ["p1", "p2", "p3", "p4"], []),
        (rid, "grew", ["p5"], []),
        (rid, "split", ["p1", "p2"], [sid]),
        (rid, "merged", ["p1", "p2"], [sid]),
    ]
    assert [e.size for e in events] == [4, 5, 3, 5]
    assert events[1].as_of == T0 + 60 and events[0].at <= events[-1].at
    assert kinds(store.ring_events(sid)) == [
        (sid, "split_off", ["p1", "p2"], [rid]),
        (sid, "merged_into", ["p1", "p2"], [rid]),
    ]
    tl = store.ring_timeline(rid)
    changed = [e for e in tl.events if e.event in {"appeared", "grew", "split", "merged"}]
    assert [e.event for e in changed] == ["appeared", "grew", "split", "merged"]
    assert changed[1].detail == "grew to 5: p5 joined"
    assert [c.kind for c in tl.changes] == ["appeared", "grew", "split", "merged"]
    gone = store.ring_timeline(sid)  # merged away: its history stays readable
    assert [e.event for e in gone.events] == ["split_off", "merged_into"] and gone.days == []
    # full runs bound the history: events older than KEEP_S go
    # a second run writing the same changes at once adds nothing
    store._write(q.RING_EVENTS_WRITE, {"events": props(events)})
    assert len(store.ring_events(rid)) == 4
    at = T0 - KEEP_S - DAY
    old = RingEvent(id="rev-old", ring_id=rid, kind="grew", at=at, as_of=T0, size=5, joined=["x"])
    store._write(q.RING_EVENTS_WRITE, {"events": props([old])})
    assert len(store.ring_events(rid)) == 5
    store.detect_rings(touched_users=["p1"], now=T0 + 10 * DAY)
    assert len(store.ring_events(rid)) == 5  # an incremental run leaves them
    store.detect_rings(now=T0 + 10 * DAY)
    assert [e.kind for e in store.ring_events(rid)] == ["appeared", "grew", "split", "merged"]
