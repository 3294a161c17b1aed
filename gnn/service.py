"""What the CLI and the workers call: score, load, and the whole training pipeline.

- `score_nodes(model, export)` gives a risk per node of a `graph.schemas.GraphExport`.
- `load_gcn(registry, version)` loads a registered GCN; `live_ring_scorer` scores rings with
  the live one (member risk and labelled fraud rate combined, see `ring_score`).
- `train_pipeline(settings=..., data_dir=...)` builds point-in-time features, trains GCN +
  XGBoost, validates on the newest labelled window, registers a version and promotes it only if
  it beats the live model on that same window by ``settings.promote_margin``.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch

from fraudring.errors import InvalidInput, Unavailable
from fraudring.logs import get_logger
from fraudring.registry import ModelNotFound, ModelRegistry
from fraudring.settings import Settings
from gnn import metrics as m
from gnn.graphdata import NODE_FEATURES
from gnn.model import FraudGCN, predict_proba
from gnn.pit import PitConfig

if TYPE_CHECKING:
    from graph.schemas import GraphExport, Ring

log = get_logger(__name__)
GCN_STATE, GCN_CONFIG, XGB_FILE = "gcn.pt", "gcn.json", "xgb.json"


class NoTrainingData(Unavailable):
    code = "no_training_data"


def _check_export(export: GraphExport) -> None:
    if tuple(export.feature_names) != tuple(NODE_FEATURES):
        raise InvalidInput(
            f"graph export features {export.feature_names} differ from the GCN's {NODE_FEATURES}"
        )


def score_nodes(model: FraudGCN, export: GraphExport) -> npt.NDArray[np.float64]:
    """Risk in [0, 1] for every node of the export (index = export node index)."""
    _check_export(export)
    if export.num_nodes == 0:
        return np.empty(0)
    return predict_proba(model, export.x, export.edge_index)


def ring_score(member_risk: Sequence[float], fraud_rate: float) -> float:
    """Noisy-or of the riskiest member and the labelled fraud rate: either alone can condemn."""
    top = max((r for r in member_risk if r == r), default=0.0)
    return float(1.0 - (1.0 - top) * (1.0 - min(max(fraud_rate, 0.0), 1.0)))


def save_gcn(model: FraudGCN, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / GCN_STATE)
    (directory / GCN_CONFIG).write_text(json.dumps(model.config(), indent=2) + "\n")
    return {GCN_STATE: directory / GCN_STATE, GCN_CONFIG: directory / GCN_CONFIG}


def load_gcn(registry: ModelRegistry, version: str | None = None) -> FraudGCN:
    """The GCN of `version` (default: the live one); ModelNotFound when it has none."""
    version = version or registry.live_version()
    if version is None:
        raise ModelNotFound("no live model version")
    cfg = json.loads(registry.artifact(version, GCN_CONFIG).read_text())
    feats = cfg.pop("features", list(NODE_FEATURES))
    if tuple(feats) != tuple(NODE_FEATURES):
        raise InvalidInput(f"model {version}: GCN node features {feats} are not this code's")
    model = FraudGCN(**cfg)
    state = torch.load(registry.artifact(version, GCN_STATE), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model


class LiveRingScorer:
    """Scores rings with the live GCN: ring score = `ring_score`(member risks, fraud rate).
    Member risks come from the last `refresh(export)`; rings with no scored member fall back to
    the graph's own ring risk combined with the fraud rate."""

    def __init__(self, model: FraudGCN, version: str) -> None:
        self.model, self.version = model, version
        self.user_risk: dict[str, float] = {}

    def refresh(self, export: GraphExport) -> int:
        risk = score_nodes(self.model, export)
        users = np.flatnonzero(export.kind == 0)
        self.user_risk = {export.ids[i]: float(risk[i]) for i in users}
        return len(self.user_risk)

    def __call__(self, rings: Sequence[Ring]) -> tuple[dict[str, float], str | None]:
        out: dict[str, float] = {}
        for ring in rings:
            member = [self.user_risk[u] for u in ring.members if u in self.user_risk]
            out[ring.id] = ring_score(member or [ring.risk], ring.fraud_rate)
        return out, self.version


def live_ring_scorer(*, settings: Settings, store: Any = None) -> LiveRingScorer | None:
    """The live GCN's ring scorer, refreshed from `store.export()` when a store is given; None
    when no live version has a GCN."""
    registry = ModelRegistry(settings.models_path)
    live = registry.live_version()
    if live is None:
        return None
    try:
        model = load_gcn(registry, live)
    except ModelNotFound:
        return None
    scorer = LiveRingScorer(model, live)
    if store is not None:
        scorer.refresh(store.export())
    return scorer


def _live_val_pr_auc(
    registry: ModelRegistry,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.int64],
    features: list[str],
) -> float | None:
    """The live model's PR-AUC on the candidate's validation rows (None if not comparable)."""
    from gnn.tabular import XgbModel

    live = registry.live_version()
    if live is None:
        return None
    try:
        model = XgbModel.load(registry.artifact(live, XGB_FILE))
    except ModelNotFound:
        return None
    if not set(model.features) <= set(features):
        return None  # it reads features this training does not compute
    cols = [features.index(f) for f in model.features]  # an older contract is a subset
    return m.average_precision(y, model.predict(x[:, cols]))


def train_pipeline(
    *,
    settings: Settings,
    data_dir: Path | None = None,
    progress: bool = False,
    promote: bool = True,
    pit: PitConfig | None = None,
) -> dict[str, Any]:
    """Train GCN + XGBoost on a world directory, register, promote if better; returns the report
    (version, live, promoted, metrics, data_window, timings).

    Transactions come from a world directory, not the graph: the graph keeps no per-transaction
    history to rebuild point-in-time features from. `pit` sizes the point-in-time features and
    the GCN (the default: `PitConfig()`)."""
    from gnn.pipeline import run_training

    data_dir = data_dir or settings.data_dir / "world"
    if not (data_dir / "transactions.parquet").is_file():
        raise NoTrainingData(
            f"no training data at {data_dir}: pass --data DIR (a world or loaded dataset)"
        )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_training(
            settings=settings,
            data_dir=data_dir,
            work=Path(tmp),
            progress=progress,
            promote=promote,
            live_score=_live_val_pr_auc,
            save_gcn=save_gcn,
            pit=pit,
        )
    result["seconds"] = round(time.perf_counter() - t0, 2)
    log.info("gnn.trained", version=result["version"], promoted=result["promoted"])
    return result
