"""What the API answers beyond the decision: response models, each with an example, so a
generated client knows every body's shape and a reader of /docs sees one of each.

Models defined in other packages get their examples in `api.examples`. The tests validate every
example against its model. FastAPI writes the OpenAPI document without null values, so a field an
example shows as null must have a default.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

VERSION = "20261125T174700000000Z"


def _example(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [example]})


# --- models ------------------------------------------------------------------------------------
EXAMPLE_MODEL_SUMMARY: dict[str, Any] = {
    "version": VERSION,
    "created_at": "2026-11-25T17:47:00+00:00",
    "kind": "fraud-model",
    "metrics": {"val_pr_auc": 0.52, "val_roc_auc": 0.97, "val_known_frauds": 212.0},
    "thresholds": {"review": 0.31, "decline": 0.78},
    "data_window": {
        "start": "2026-10-01T00:00:00+00:00",
        "end": "2026-11-24T23:59:58+00:00",
        "name": "world",
    },
    "live": True,
    "n_features": 52,
}


class ModelSummary(BaseModel):
    """One registered version, as listed."""

    model_config = _example(EXAMPLE_MODEL_SUMMARY)

    version: str
    created_at: str | None
    kind: str | None
    metrics: dict[str, Any] | None = Field(description="validation figures, named by their split")
    thresholds: dict[str, float] | None = Field(description="review and decline score bounds")
    data_window: dict[str, Any] | None
    live: bool
    n_features: int


class ModelList(BaseModel):
    model_config = _example({"live": VERSION, "models": [EXAMPLE_MODEL_SUMMARY]})

    live: str | None = Field(
        default=None, description="the version deciding now; null or absent: rules only"
    )
    models: list[ModelSummary] = Field(description="newest first")


class ModelManifest(BaseModel):
    """A version's manifest as written at training (more keys than these may appear)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    **{k: v for k, v in EXAMPLE_MODEL_SUMMARY.items() if k != "n_features"},
                    "features": ["amount", "log_amount", "hour"],
                    "artifacts": ["gcn.json", "gcn.pt", "xgb.json"],
                    "seed": 7,
                    "label_delay_days": 7.0,
                }
            ]
        },
    )

    version: str
    created_at: str | None = None
    kind: str | None = None
    features: list[str] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    live: bool


# --- rules -------------------------------------------------------------------------------------
EXAMPLE_RULE: dict[str, Any] = {
    "name": "card_testing_burst",
    "when": "card_n_1h >= 10",
    "action": "decline",
    "score": None,
}


class RuleOut(BaseModel):
    model_config = _example(EXAMPLE_RULE)

    name: str
    when: str = Field(description="the condition, over the decision's feature names")
    action: str = Field(description="decline, review or add_score")
    score: float | None = Field(default=None, description="for add_score: what it adds")


class RulesOut(BaseModel):
    model_config = _example(
        {"source": "realtime/rules.yaml (default)", "rules": [EXAMPLE_RULE], "last_error": None}
    )

    source: str = Field(description="the file the rules came from")
    rules: list[RuleOut]
    last_error: str | None = Field(
        default=None,
        description="why the last reload was refused (the rules shown stayed in force)",
    )


# --- labels ------------------------------------------------------------------------------------
class LabelsQueued(BaseModel):
    model_config = _example({"queued": 2, "stream_ids": ["1795629600000-0", "1795629600000-1"]})

    queued: int
    stream_ids: list[str] = Field(description="ids on the labels stream, one per label")


# --- operations --------------------------------------------------------------------------------
class Health(BaseModel):
    model_config = _example({"status": "ok"})

    status: str


class Check(BaseModel):
    ok: bool
    detail: str


class Ready(BaseModel):
    model_config = _example(
        {
            "status": "ready",
            "checks": {
                "redis": {"ok": True, "detail": "write + read 0.2 ms"},
                "spool": {"ok": True, "detail": "var/spool writable"},
                "replay": {"ok": True, "detail": "no gap"},
                "model": {"ok": True, "detail": f"live {VERSION}"},
                "graph": {"ok": True, "detail": "falkordb 4.4, graph fraudring: 10240 nodes"},
            },
        }
    )

    status: str = Field(description="ready or not ready (then the answer is 503)")
    checks: dict[str, Check]


class Trivial(BaseModel):
    model_config = _example({"ok": True})

    ok: bool
