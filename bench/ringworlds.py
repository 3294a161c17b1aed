"""The worlds `bench rings` scores: one per ring topology and seed, the AMLSim samples, the
fan-in sample read backwards (a fan-out) and the cycle sample rewired to AMLSim's other
typologies (`bench.amlshapes`).

Each world is loaded as arrays (`gnn.graphdata.TxnArrays`, the offline ring rule's input) with
its planted rings (members of size >= 3, as `world.io.match_rings` counts them) and, per user,
when its first fraud label arrived. AMLSim transfers name their payee, whom the ring rule ties
to the account node its payers share, as the graph store does (`graph.ingest.with_payees`).
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.amlshapes import SHAPES as AML_SHAPES
from bench.amlshapes import rewire
from gnn.dataset import WorldFrames, load_frames
from gnn.graphdata import KINDS, NEVER, TxnArrays, txn_arrays
from gnn.ringrisk import RingIndex
from world.io import frame_ring_members

AMLSIM = Path(__file__).resolve().parents[1] / "../shared/datasets/amlsim"
#: The AMLSim worlds the benchmarks score: (sample, read backwards, rewired to another of
#: AMLSim's typologies by `bench.amlshapes`); the fan-in read backwards is a fan-out.
AMLSIM_SAMPLES: tuple[tuple[str, bool, str | None], ...] = (
    ("20K_cycle200", False, None),
    ("20K_fanin200", False, None),
    ("20K_fanin200", True, None),
    *(("20K_cycle200", False, shape) for shape in AML_SHAPES),
)
USER = KINDS.index("user")


@dataclass
class BenchWorld:
    name: str
    topology: str
    seed: int
    split: str  # "validation" (parameters are chosen here) or "test"
    a: TxnArrays
    index: RingIndex
    planted: dict[str, set[str]]  # ring -> member user node ids (as strings)
    fraud_at: dict[str, int]  # user node id -> arrival of its first fraud label
    end: int  # just after the last transaction

    def labelled(self, at: int) -> set[str]:
        """Users with a fraud label known before `at`."""
        return {u for u, t in self.fraud_at.items() if t < at}

    def first_label(self) -> dict[str, int]:
        """Per planted ring, when the first fraud label of one of its members arrived."""
        out = {}
        for rid, members in self.planted.items():
            times = [self.fraud_at[m] for m in members if m in self.fraud_at]
            if times:
                out[rid] = min(times)
        return out


def _arrays(
    txns: pd.DataFrame, labels: pd.DataFrame, truth: pd.DataFrame | None
) -> tuple[TxnArrays, dict[str, set[str]], dict[str, int]]:
    a = txn_arrays(txns, labels)
    users = a.node[:, USER]
    planted: dict[str, set[str]] = {}
    if truth is not None:  # `world.io.ring_members`, as user node ids
        members = frame_ring_members(truth, txns)
        node = {name: str(int(a.offsets[USER]) + i) for i, name in enumerate(a.node_ids[USER])}
        planted = {r: {node[u] for u in m} for r, m in members.items()}
    planted = {r: m for r, m in planted.items() if len(m) >= 3}
    # a fraud label counts for both parties of a transfer (`gnn.ringrisk.fraud_users`)
    fraud = np.flatnonzero(a.label == 1)
    fraud_at: dict[str, int] = {}
    for party in (users, a.payee):
        for u, lt in zip(party[fraud].tolist(), a.label_ts[fraud].tolist(), strict=True):
            key = str(u)
            if u >= 0 and lt < fraud_at.get(key, NEVER):
                fraud_at[key] = lt
    return a, planted, fraud_at


def _world(
    name: str,
    topology: str,
    *,
    seed: int,
    split: str,
    f: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None],
) -> BenchWorld:
    """A benchmark world of (transactions, labels, truth)."""
    a, planted, fraud_at = _arrays(*f)
    end = int(a.t[-1]) + 1
    return BenchWorld(name, topology, seed, split, a, RingIndex.of(a), planted, fraud_at, end)


def topology_frames(
    topology: str, seed: int, *, transactions: int, shift: bool = False
) -> WorldFrames:
    """The benchmarks' hard world of one ring topology: 30 days, 0.5% fraud, 0.02% of
    legitimate transactions labelled fraud by mistake (`shift`: a regime change in the test
    week)."""
    from world.simulate import generate

    with tempfile.TemporaryDirectory(prefix="fraudring-bench-") as tmp:
        out = Path(tmp) / "w"
        generate(
            out=out,
            transactions=transactions,
            seed=seed,
            days=30,
            fraud_rate=0.005,
            topology=topology,
            false_label_rate=0.0002,
            shift=shift,
            progress=False,
        )
        return load_frames(out)


def synthetic(topology: str, seed: int, split: str, *, transactions: int) -> BenchWorld:
    f = topology_frames(topology, seed, transactions=transactions)
    return _world(
        f"{topology} seed {seed}", topology, seed=seed, split=split, f=(f.txns, f.labels, f.truth)
    )


def amlsim_source(sample: str, tmp: Path, *, reverse: bool, shape: str | None = None) -> Path:
    """The sample's folder; `reverse`: a copy under `tmp` with every transfer read backwards;
    `shape`: a copy with its patterns rewired to another AMLSim typology (`bench.amlshapes`)."""
    if shape:
        return rewire(AMLSIM / sample, tmp / shape.replace("_", ""), shape=shape, seed=7)
    if not reverse:
        return AMLSIM / sample
    src = tmp / f"{sample}-reversed"
    src.mkdir()
    shutil.copy(AMLSIM / sample / "nodes.csv", src / "nodes.csv")
    t = pd.read_csv(AMLSIM / sample / "transactions.csv")
    t = t.rename(columns={"sourceNodeId": "targetNodeId", "targetNodeId": "sourceNodeId"})
    t.to_csv(src / "transactions.csv", index=False)
    return src


def amlsim(
    sample: str, *, seed: int, reverse: bool = False, shape: str | None = None
) -> BenchWorld:
    """An AMLSim sample as `fraudring load --amlsim` loads it; `reverse`: every transfer read
    backwards (the fan-in sample becomes a fan-out: one account feeding many); `shape`: its
    patterns rewired to another of AMLSim's typologies."""
    from world.amlsim import load_amlsim

    with tempfile.TemporaryDirectory(prefix="fraudring-bench-aml-") as tmp:
        out = Path(tmp) / "w"
        src = amlsim_source(sample, Path(tmp), reverse=reverse, shape=shape)
        load_amlsim(src=src, out=out, seed=seed)
        f = load_frames(out)
    name = f"AMLSim {sample}" + (" reversed" if reverse else f" as {shape}" if shape else "")
    kind = f"amlsim_{amlsim_kind(sample, reverse=reverse, shape=shape)}"
    return _world(name, kind, seed=seed, split="test", f=(f.txns, f.labels, f.truth))


def amlsim_kind(sample: str, *, reverse: bool, shape: str | None) -> str:
    """The typology of an AMLSim world: `cycle`, `fanin`, `fanout` or the rewired shape."""
    return shape or ("fanout" if reverse else sample.split("_")[-1].rstrip("0123456789"))


def apart(name: str, seed: int) -> BenchWorld:
    """The world of `seed` of `bench.apart.<name>`, loaded as a user's CSV (`fraudring load`)."""
    from world.loaders import load_table, parse_columns

    gen = importlib.import_module(f"bench.apart.{name}")
    with tempfile.TemporaryDirectory(prefix="fraudring-bench-apart-") as tmp:
        out = Path(tmp) / "w"
        src = gen.write(seed, Path(tmp) / f"{name}.csv")
        load_table(src=src, out=out, columns=parse_columns(gen.COLUMNS))
        f = load_frames(out)
    title, frames = f"{name} (apart) seed {seed}", (f.txns, f.labels, f.truth)
    return _world(title, f"apart_{name}", seed=seed, split="test", f=frames)
