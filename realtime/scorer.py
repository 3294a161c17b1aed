"""The XGBoost scorer: the LIVE model's booster, loaded once, warmed up, hot-reloaded.

Only `xgb.json` is read (never gcn.pt: this process has no torch). The manifest's `features` must
be names this engine computes; the booster's own feature names, when saved, must match them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from fraudring.errors import FraudringError
from fraudring.logs import get_logger
from fraudring.registry import ModelRegistry
from realtime.features import FEATURE_NAMES, INDEX, Row

log = get_logger(__name__)


class ModelRefused(FraudringError):
    status_code = 409
    code = "model_refused"


@dataclass(frozen=True)
class SaabasTable:
    """For every leaf of every tree, the per-feature change of the node mean along its path."""

    node_row: np.ndarray  # (trees, max node id + 1) -> row in `vectors` (leaves only)
    vectors: np.ndarray  # (leaves, features)

    @classmethod
    def build(cls, booster: xgb.Booster, features: tuple[str, ...]) -> SaabasTable:
        index = {f: i for i, f in enumerate(features)}
        trees = [json.loads(t) for t in booster.get_dump(dump_format="json", with_stats=True)]
        rows: list[np.ndarray] = []
        maps: list[dict[int, int]] = []

        def mean(node: dict[str, Any]) -> float:
            if "leaf" in node:
                return float(node["leaf"])
            kids = node["children"]
            total = sum(float(k["cover"]) for k in kids) or 1.0
            m = sum(float(k["cover"]) * mean(k) for k in kids) / total
            node["_mean"] = m
            return m

        for tree in trees:
            mean(tree)
            leaf_rows: dict[int, int] = {}
            stack: list[tuple[dict[str, Any], np.ndarray]] = [
                (tree, np.zeros(len(features), dtype=np.float32))
            ]
            while stack:
                node, acc = stack.pop()
                if "leaf" in node:
                    leaf_rows[int(node["nodeid"])] = len(rows)
                    rows.append(acc)
                    continue
                here = node["_mean"]
                f = index[node["split"]]
                for kid in node["children"]:
                    step = acc.copy()
                    step[f] += (float(kid["leaf"]) if "leaf" in kid else kid["_mean"]) - here
                    stack.append((kid, step))
            maps.append(leaf_rows)
        width = max((max(m) for m in maps if m), default=0) + 1
        node_row = np.zeros((len(maps), width), dtype=np.intp)
        for t, m in enumerate(maps):
            for node_id, r in m.items():
                node_row[t, node_id] = r
        vectors = np.vstack(rows) if rows else np.zeros((1, len(features)), dtype=np.float32)
        return cls(node_row=node_row, vectors=vectors)

    def contributions(self, leaves: np.ndarray) -> np.ndarray:
        picked = self.node_row[np.arange(len(leaves)), leaves]
        result: np.ndarray = self.vectors[picked].sum(axis=0)
        return result


@dataclass(frozen=True)
class LoadedModel:
    version: str
    booster: xgb.Booster
    features: tuple[str, ...]
    columns: np.ndarray  # indices into FEATURE_NAMES, in the model's order
    thresholds: dict[str, float]
    manifest: dict[str, Any]
    saabas: SaabasTable

    def select(self, row: Row) -> Row:
        if len(self.columns) == len(FEATURE_NAMES) and self.features == FEATURE_NAMES:
            return row
        return np.ascontiguousarray(row[:, self.columns])

    def predict(self, row: Row) -> float:
        out = self.booster.inplace_predict(self.select(row), validate_features=False)
        return float(np.asarray(out).reshape(-1)[0])

    def contributions(self, row: Row, *, top: int = 5) -> list[tuple[str, float, float]]:
        """Top (feature, value, log-odds contribution) by absolute size, for one row.

        Saabas contributions (what `pred_contribs=True, approx_contribs=True` computes) from the
        row's leaves and a per-leaf table built at load: ~0.2 ms instead of ~2 ms for TreeSHAP.
        """
        x = self.select(row)
        dm = xgb.DMatrix(x, feature_names=list(self.features), nthread=1)
        leaves = self.booster.predict(dm, pred_leaf=True).astype(np.intp).reshape(-1)
        contribs = self.saabas.contributions(leaves)
        order = np.argsort(-np.abs(contribs))[:top]
        return [(self.features[i], float(x[0, i]), float(contribs[i])) for i in order]


def load_model(registry: ModelRegistry, version: str) -> LoadedModel:
    """Load and check one version; raise ModelRefused with the reason if it cannot serve."""
    manifest = registry.manifest(version)
    features = tuple(manifest.get("features") or ())
    unknown = [f for f in features if f not in INDEX]
    if not features or unknown:
        raise ModelRefused(
            f"model {version}: features not computed online: {unknown or 'none listed'}"
        )
    booster = xgb.Booster()
    booster.load_model(str(registry.artifact(version, "xgb.json")))
    booster.set_param({"nthread": 1})  # one request, one core: threads only add latency
    names = booster.feature_names
    if names is not None and tuple(names) != features:
        raise ModelRefused(f"model {version}: booster feature order differs from its manifest")
    if booster.num_features() != len(features):
        raise ModelRefused(
            f"model {version}: booster has {booster.num_features()} features, "
            f"manifest lists {len(features)}"
        )
    raw = manifest.get("thresholds") or {}
    thresholds = {k: float(raw[k]) for k in ("review", "decline") if k in raw}
    model = LoadedModel(
        version=version,
        booster=booster,
        features=features,
        columns=np.asarray([INDEX[f] for f in features], dtype=np.intp),
        thresholds=thresholds,
        manifest=manifest,
        saabas=SaabasTable.build(booster, features),
    )
    warm = np.zeros((1, len(FEATURE_NAMES)), dtype=np.float32)
    for _ in range(3):
        model.predict(warm)
    model.contributions(warm)
    return model


class Scorer:
    """Holds the current model; `refresh()` reloads when the LIVE file changes."""

    def __init__(self, models_path: Path) -> None:
        self.registry = ModelRegistry(models_path)
        self.model: LoadedModel | None = None
        self.error: str | None = None
        self._live_stamp: tuple[float, str | None] | None = None
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[float, str | None]:
        try:
            mtime = (self.registry.root / "LIVE").stat().st_mtime
        except FileNotFoundError:
            return (0.0, None)
        return (mtime, self.registry.live_version())

    def refresh(self) -> bool:
        """Load the LIVE version if it changed; keep the old model if the new one is refused."""
        with self._lock:
            stamp = self._stamp()
            if stamp == self._live_stamp:
                return False
            self._live_stamp = stamp
            version = stamp[1]
            if version is None:
                if self.model is not None:
                    log.warning("model.unloaded", reason="no LIVE version")
                self.model, self.error = None, None
                return True
            if self.model is not None and self.model.version == version:
                return False
            try:
                self.model = load_model(self.registry, version)
                self.error = None
                log.info("model.loaded", version=version)
            except (FraudringError, xgb.core.XGBoostError, OSError, ValueError) as exc:
                self.error = f"{version}: {exc}"
                log.error("model.refused", version=version, error=str(exc))
            return True
