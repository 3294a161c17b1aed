"""The worlds `bench learning` scores, built point-in-time: the simulator's per topology, and the
AMLSim samples as `fraudring load --amlsim` loads them (read backwards, or rewired to AMLSim's
other typologies by `bench.amlshapes`)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from bench.ringworlds import amlsim_source, topology_frames
from gnn.dataset import Dataset, build_dataset, load_frames
from gnn.pit import PitConfig
from graph.schemas import RingParams


def build(
    topology: str, seed: int, *, transactions: int, shift: bool, graph_model: bool = True
) -> Dataset:
    """A world built point-in-time; without `graph_model`, no GCN and no graph-model features
    (what the served model and its hedges read is the same)."""
    frames = topology_frames(topology, seed, transactions=transactions, shift=shift)
    pit = PitConfig(gnn_features=graph_model, use_gcn=graph_model)
    return build_dataset(frames, pit=pit, progress=False)


def build_amlsim(
    sample: str, *, seed: int, window_days: float | None, reverse: bool, shape: str | None = None
) -> tuple[Dataset, float]:
    """(the dataset, its ring window) of an AMLSim sample (`reverse`: read backwards; `shape`:
    rewired) loaded as `fraudring load --amlsim` does, `window_days` None spanning it."""
    from world.amlsim import load_amlsim

    with tempfile.TemporaryDirectory(prefix="fraudring-bench-learning-") as tmp:
        out = Path(tmp) / "w"
        src = amlsim_source(sample, Path(tmp), reverse=reverse, shape=shape)
        load_amlsim(src=src, out=out, seed=seed)
        frames = load_frames(out)
    if window_days is None:
        ts = frames.txns["ts"]
        window_days = math.ceil((ts.max() - ts.min()).total_seconds() / 86_400) + 1
    pit = PitConfig(gnn_features=True, rings=RingParams(window_days=window_days))
    return build_dataset(frames, pit=pit, progress=False), window_days
