"""The one typed settings object of fraudring.

Every process (CLI, API, workers) reads its configuration here and nowhere else, so that a bad
value fails at start with the setting's name instead of deep inside a request.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    AwareDatetime,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from fraudring.contract.transaction import context
from fraudring.errors import validation_reason

#: The dev API key, usable only when ``env == dev``; its sha256 is what the settings hold.
DEV_API_KEY = "dev-key"
DEV_API_KEY_HASH = hashlib.sha256(DEV_API_KEY.encode()).hexdigest()
DEV_GRAPH_PASSWORD = "fraudring-dev"  # noqa: S105 - the refused-outside-dev default
DEV_WEBHOOK_SECRET = "fraudring-dev-webhook"  # noqa: S105 - the refused-outside-dev default

#: Never a production graph password: empty, or Neo4j's factory default.
WEAK_GRAPH_PASSWORDS = frozenset({"", "neo4j", "password"})

SCOPES = frozenset({"score", "investigate", "admin"})


class Env(StrEnum):
    dev = "dev"
    test = "test"
    prod = "prod"


class ReviewMeaning(StrEnum):
    step_up = "step_up"
    manual_review = "manual_review"


class TrainHedge(StrEnum):
    """How nightly training hedges its graph features (gnn.hedge); the guard always runs."""

    none = "none"
    dropout = "dropout"
    monotone = "monotone"
    blend = "blend"


class SettingsError(Exception):
    """Raised with a readable message naming the offending setting(s)."""


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FRAUDRING_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    env: Env = Env.dev
    #: Level of the structured logs of the API's worker processes (the CLI has --log-level).
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    # Servers. None means "start the embedded runtime" (one redis-server with FalkorDB).
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("FRAUDRING_REDIS_URL", "REDIS_URL")
    )
    graph_url: str | None = Field(
        default=None, validation_alias=AliasChoices("FRAUDRING_GRAPH_URL", "GRAPH_URL")
    )
    #: A Redis Cluster (any node's URL) for the per-entity state: velocity, graph risk and
    #: statistics (realtime.keys KEY_BOUNDS "state"); None keeps them on redis_url.
    redis_cluster_url: str | None = None
    graph_name: str = Field(default="fraudring", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    graph_user: str = "neo4j"
    graph_password: SecretStr = SecretStr(DEV_GRAPH_PASSWORD)
    #: Neo4j with Graph Data Science: full ring detection takes its components from GDS WCC in
    #: the database (graph.gds) instead of Python; off by default (docs/neo4j.md says why).
    graph_gds: bool = False
    #: Prefix of every Redis key the project writes (tests use their own).
    redis_prefix: str = Field(default="fraudring:", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")

    #: fsync policy of the embedded servers' append-only files: `everysec` or `always`.
    embedded_appendfsync: str = Field(default="everysec", pattern=r"^(everysec|always)$")

    # Files.
    data_dir: Path = Path("var")
    #: Where decisions are spooled when the data directory's spool cannot be written (a full or
    #: read-only disk); None: a directory in /dev/shm (memory) or the system's temp directory.
    spool_fallback_dir: Path | None = None
    model_dir: Path | None = None

    # Decisions.
    amount_cap: Annotated[float, Field(gt=0)] = 1_000_000.0
    cost_fp: Annotated[float, Field(ge=0)] = 100.0
    cost_fn: Annotated[float, Field(ge=0)] = 550.0
    review_threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    decline_threshold: Annotated[float, Field(ge=0, le=1)] = 0.9
    review_means: ReviewMeaning = ReviewMeaning.manual_review
    rules_path: Path | None = None
    redis_timeout_ms: Annotated[int, Field(ge=1, le=10_000)] = 25
    max_future_skew_s: Annotated[int, Field(ge=0)] = 300
    #: Transactions older than this are refused (API, loaders, stream): a typo'd year, not data.
    earliest_txn_time: AwareDatetime = datetime(2000, 1, 1, tzinfo=UTC)
    #: How long a txn_id's decision is remembered: a retry within it gets the same answer (and
    #: another body under the id a 409); after it the id may be decided afresh.
    idempotency_ttl_s: Annotated[int, Field(ge=60, le=90 * 86400)] = 48 * 3600
    #: A `review` is kept this long with its explanation (its decision record, the only copy)
    #: for the review queue; resolving it leaves the record the rest of its idempotency window.
    review_keep_s: Annotated[int, Field(ge=3600, le=366 * 86400)] = 30 * 86400
    #: Request bodies larger than this are refused (413) before they are parsed.
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    #: Each API process keeps the decisions it recorded this long in memory, and records them
    #: again (once each) when Redis restarts: the seconds an append-only file may lose.
    redis_recover_window_s: Annotated[float, Field(ge=0, le=600)] = 10.0
    #: Shared directory of per-process Prometheus files when the API runs several workers.
    metrics_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("FRAUDRING_METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR"),
    )

    #: sha256 hex digest of an API key -> comma-separated scopes, optionally after the key's
    #: name and a colon (``alice:investigate,admin``): the name is who labels and acts.
    api_keys: dict[str, str] = Field(
        default_factory=lambda: {DEV_API_KEY_HASH: "dev:score,investigate,admin"}
    )

    #: Key of the keyed hash `fraudring load --tokenize-cards` puts in place of card numbers.
    card_token_key: SecretStr | None = Field(default=None, min_length=32)

    # Rings.
    #: Links older than this many days (before the newest data) join no ring. 30 suits card
    #: fraud, whose crews work in days; laundering patterns that repeat every few weeks need a
    #: window over two repeats (the AMLSim samples: 120, docs/rings.md).
    ring_window_days: Annotated[float, Field(gt=0, le=3650)] = 30.0

    # Learning.
    seed: int = 7
    promote_margin: Annotated[float, Field(ge=0)] = 0.0
    train_hedge: TrainHedge = TrainHedge.none

    # Workers (Celery pipeline). Cron strings are "minute hour day month weekday" (UTC).
    #: Messages per graph write + ring pass at most; big batches amortise ring detection.
    ingest_batch: Annotated[int, Field(ge=1, le=50_000)] = 5000
    ingest_claim_idle_ms: Annotated[int, Field(ge=100)] = 30_000
    #: A drain holds its lease this long between batches; a killed one is replaced after it.
    ingest_lease_s: Annotated[int, Field(ge=1)] = 30
    #: A small read waits this long for more messages: fewer, larger graph writes.
    ingest_linger_ms: Annotated[int, Field(ge=0, le=5000)] = 100
    #: The decision stream is this many streams, a user's decisions always in the same one (a
    #: hash of the user id), each drained under its own lease: the ingest workers that run in
    #: parallel. Change it only with the stream drained (a user's next decisions may move).
    stream_partitions: Annotated[int, Field(ge=1, le=64)] = 4
    #: The decision stream keeps at least this much history (by the entries' stream ids); older
    #: entries go once every consumer group acknowledged them and the graph recorded them.
    stream_retention_s: Annotated[float, Field(ge=0)] = 60.0
    #: The workers trim the decision stream at most this often.
    stream_trim_every_s: Annotated[float, Field(gt=0)] = 5.0
    task_max_retries: Annotated[int, Field(ge=0, le=50)] = 5
    task_backoff_max_s: Annotated[int, Field(ge=1)] = 600
    #: How often the workers recompute the merchants' and users' statistics (STATS_FEATURES).
    stats_refresh_s: Annotated[float, Field(gt=0)] = 300.0
    #: ... and this long after a label drain applied labels (they move the merchants' rates).
    stats_label_gap_s: Annotated[float, Field(ge=0)] = 30.0
    #: Days after which an unlabelled transaction counts as genuine in those statistics, when
    #: the live model does not say (its manifest's label_delay_days, the training data's).
    label_delay_days: Annotated[float, Field(ge=0)] = 7.0
    retrain_cron: str = Field(default="30 2 * * *", pattern=r"^\S+ \S+ \S+ \S+ \S+$")
    drift_cron: str = Field(default="0 6 * * *", pattern=r"^\S+ \S+ \S+ \S+ \S+$")
    drift_psi_bound: Annotated[float, Field(gt=0)] = 0.25
    drift_recall_floor: Annotated[float, Field(ge=0, le=1)] = 0.3
    alert_webhook_url: str | None = None
    #: Shared with the webhook's receiver, which checks each POST's HMAC (workers.alerts).
    alert_webhook_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    alert_score: Annotated[float, Field(ge=0, le=1)] = 0.9
    alert_ring_size: Annotated[int, Field(ge=2)] = 8

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.model_dir is None:
            self.model_dir = self.data_dir / "models"
        if self.redis_url is not None:
            scheme = urlsplit(self.redis_url).scheme
            if scheme not in {"redis", "rediss", "unix"}:
                raise ValueError(
                    f"redis_url: scheme must be redis://, rediss:// or unix://, got {scheme!r}"
                )
        if self.redis_cluster_url is not None:
            scheme = urlsplit(self.redis_cluster_url).scheme
            if scheme not in {"redis", "rediss"}:
                raise ValueError(
                    f"redis_cluster_url: scheme must be redis:// or rediss://, got {scheme!r}"
                )
        if self.graph_url is not None:
            scheme = urlsplit(self.graph_url).scheme
            allowed = {"falkordb", "falkordbs", "redis", "bolt", "bolt+s", "neo4j", "neo4j+s"}
            if scheme not in allowed:
                raise ValueError(
                    f"graph_url: scheme must be one of {sorted(allowed)}, got {scheme!r}"
                )
        if self.review_threshold > self.decline_threshold:
            raise ValueError("review_threshold must not exceed decline_threshold")
        for digest, scopes in self.api_keys.items():
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError("api_keys: keys must be sha256 hex digests of the API keys")
            unknown = {s.strip() for s in _key_entry(scopes)[1].split(",")} - SCOPES
            if unknown:
                raise ValueError(f"api_keys: unknown scopes {sorted(unknown)}")
        if self.env is not Env.dev:
            if DEV_API_KEY_HASH in self.api_keys:
                raise ValueError(
                    "api_keys: the dev key is refused outside env=dev; set FRAUDRING_API_KEYS"
                )
            neo4j = bool(self.graph_url and self.graph_url.startswith(("bolt", "neo4j")))
            password = self.graph_password.get_secret_value()
            if neo4j and password == DEV_GRAPH_PASSWORD:
                raise ValueError("graph_password: the default password is refused outside env=dev")
            if neo4j and self.env is Env.prod and password in WEAK_GRAPH_PASSWORDS:
                raise ValueError(
                    "graph_password: empty or Neo4j's factory password is refused in prod"
                )
            secret = self.alert_webhook_secret.get_secret_value()
            if self.alert_webhook_url and (secret == DEV_WEBHOOK_SECRET or len(secret) < 16):
                raise ValueError(
                    "alert_webhook_secret: with a webhook URL, outside env=dev, set a secret of "
                    "at least 16 characters shared with the receiver (the default is refused)"
                )
        return self

    def contract_context(self) -> dict[str, Any]:
        """This deployment's caps, as the contract's validators read them."""
        return context(
            amount_cap=self.amount_cap,
            max_future_skew_s=self.max_future_skew_s,
            min_ts=self.earliest_txn_time.timestamp(),
        )

    @property
    def models_path(self) -> Path:
        assert self.model_dir is not None
        return self.model_dir

    def scopes_for(self, api_key: str) -> frozenset[str] | None:
        entry = self.api_keys.get(hash_api_key(api_key))
        if entry is None:
            return None
        return frozenset(s.strip() for s in _key_entry(entry)[1].split(",") if s.strip())

    def key_name(self, api_key: str) -> str:
        """Who a key speaks for in labels, actions and cases: its name, else `key-` and the
        first 8 hex digits of its sha256 (never the key itself)."""
        digest = hash_api_key(api_key)
        name = _key_entry(self.api_keys.get(digest, ""))[0]
        return name or f"key-{digest[:8]}"


def _key_entry(value: str) -> tuple[str, str]:
    """(name, scopes) of an `api_keys` value, `name:scopes` or just `scopes`."""
    name, sep, scopes = value.partition(":")
    return (name.strip(), scopes) if sep else ("", value)


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation error into one readable `SettingsError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = validation_reason(str(err["msg"]))
            loc = ".".join(str(p) for p in err["loc"])
            if not loc:  # a check across fields names its field first: "redis_url: ..."
                loc, sep, rest = msg.partition(": ")
                loc, msg = (loc, rest) if sep and loc.isidentifier() else ("", msg)
            lines.append(f"FRAUDRING_{loc.upper()}: {msg}" if loc else msg)
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
