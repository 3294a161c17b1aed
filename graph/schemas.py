"""Data shapes of the graph store: the ingest record, results, rings, queries and the export.

`TxnRecord` is a slotted dataclass rather than a pydantic model because millions of them go
through ingest; `ingest` validates a whole batch at once and raises `InvalidGraphId` naming the
field and the reason. Everything an API returns is a pydantic model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from fraudring.contract.ids import ENTITY_KINDS as KINDS
from fraudring.contract.ids import LINKED_KINDS, MAX_ID_LEN, EntityKind, id_problem
from fraudring.errors import InvalidInput, NotFound
from fraudring.settings import Settings

__all__ = ["KINDS", "LINKED_KINDS", "MAX_ID_LEN", "EntityKind"]

LabelValue = Literal["fraud", "legitimate"]

#: Node label of each kind; labels are constants, never built from input.
LABELS: Final[dict[str, str]] = {
    "user": "User",
    "card": "Card",
    "device": "Device",
    "ip": "IP",
    "merchant": "Merchant",
}
KIND_OF_LABEL: Final[dict[str, EntityKind]] = {v: k for k, v in LABELS.items()}  # type: ignore[misc]
#: A payee's edge to the account it receives at carries this amount (payments are > 0), which is
#: how a receipt, and so a payee's account, is told from a payment (`graph.ingest.with_payees`).
RECEIPT_AMOUNT: Final = 0.0


def is_receipt(amount_sum: float | None) -> bool:
    return float(amount_sum or 0) == RECEIPT_AMOUNT


class InvalidGraphId(InvalidInput):
    """An id the store cannot take (fraudring.contract.ids), in the API's 422 shape:
    `detail.errors` names the field and why."""

    code = "invalid_graph_id"


class GraphNotFound(NotFound):
    code = "graph_not_found"


def require_id(value: object, *, field_name: str, optional: bool = False) -> str | None:
    """The id itself, or `InvalidGraphId` naming the field and why (fraudring.contract's rule:
    the store refuses what it cannot hold whoever calls it)."""
    if value is None:
        if optional:
            return None
        raise InvalidGraphId.on(field_name, "required")
    problem = id_problem(value)
    if problem is not None:
        raise InvalidGraphId.on(field_name, problem)
    return value  # type: ignore[return-value]


def check_kind(kind: str, *, field: str = "kind") -> EntityKind:
    """The 422 names ``field`` (the parameter the kind came in) as request validation does."""
    if kind not in LABELS:
        raise InvalidInput.on(field, f"must be one of {', '.join(KINDS)}")
    return kind  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class TxnRecord:
    """One transaction as the graph sees it (`ts` in epoch seconds; entities may be missing)."""

    txn_id: str
    ts: float
    user_id: str
    card_id: str | None
    device_id: str | None
    ip: str | None
    merchant_id: str | None
    amount: float
    #: A transfer's receiving user, tied to the counterparty (`merchant_id`) like its payers.
    payee_user_id: str | None = None


class IngestResult(BaseModel):
    received: int = Field(description="records passed in")
    ingested: int = Field(description="new transactions written")
    duplicates: int = Field(description="already in the graph or repeated in the batch")
    edges_written: int = 0
    seconds: float = 0.0


class LabelResult(BaseModel):
    kind: EntityKind
    id: str
    label: LabelValue | None = Field(description="None when a label was taken back")
    changed: bool = Field(description="False when the same label was already there")
    edges_updated: int = 0


class EntityRef(BaseModel):
    kind: EntityKind
    id: str


class RingParams(BaseModel):
    """What links two users into one ring (see graph.rings for the reasoning)."""

    window_days: float = Field(default=30.0, gt=0, description="links older than this ignored")
    hub_cap: int = Field(default=20, ge=2, description="max distinct users of a card/device/ip")
    card_min_users: int = Field(
        default=6,
        ge=2,
        description="a card links only when this many users share it (a stolen card: its "
        "owner's household and the thief)",
    )
    ip_min_txns: int = Field(
        default=2, ge=1, description="a user is tied to an IP after this many transactions"
    )
    ip_share: float = Field(
        default=0.3, ge=0, le=1, description="... and this share of the user's transactions"
    )
    merchant_cap: int = Field(
        default=60, ge=0, description="max distinct users of a linking merchant (< 2: none)"
    )
    merchant_repeat_share: float = Field(
        default=0.5, ge=0, le=1, description="min share of repeat customers of such a merchant"
    )
    household_max: int = Field(
        default=4, ge=1, description="larger groups keep only users tied through bigger entities"
    )
    cross_homes: int = Field(
        default=3, ge=2, description="homes (users' main IPs) a device spans to tie a ring"
    )
    min_size: int = Field(default=2, ge=2)
    max_size: int = Field(
        default=100,
        ge=2,
        description="a bigger component is split without its merchant links; what is still "
        "bigger is a community, not a ring, unless grown from labels: then it is cut into its "
        "communities (graph.ringrule.bounded)",
    )
    evidence_cap: int = Field(
        default=50,
        ge=2,
        description="an entity with more recent users is infrastructure, no evidence of a ring, "
        "unless labels are at least join_share of its users (a crew's own proxy)",
    )
    evidence_alpha: float = Field(
        default=0.003,
        gt=0,
        le=1,
        description="entities tie labelled users into a suspicious ring when their labelled "
        "sharing, multiplied along the group, would be this unlikely for their kinds "
        "(graph.rings)",
    )
    chain_alpha: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="an entity too weak alone still adds its evidence to a group of such "
        "entities (a relay) when its tail is at most this (graph.ringevidence.chained)",
    )
    evidence_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="an entity is a candidate only when labelled users are at least this "
        "share of its users",
    )
    join_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="an unlabelled user joins through one such entity when labels are at least "
        "this share of its users and of its transactions (or through two such entities)",
    )
    join_alpha: float = Field(
        default=1e-6,
        gt=0,
        le=1,
        description="an unlabelled user tied to two labelled ones joins them when the evidence "
        "of its ties multiplies to this or less (graph.ringevidence.evidence_rings)",
    )
    size_flag: int = Field(
        default=0,
        ge=0,
        description="a group without two labelled members is suspicious when bigger than this "
        "or tied across homes (0: never; only for populations without dorms, offices or "
        "extended families, see docs/rings.md)",
    )
    shape_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="a group beyond a household without two labelled members is suspicious "
        "when, in this population, at least this share of such groups are confirmed rings "
        "(95% lower bound; 0: never; graph.ringshape)",
    )
    label_prior: float = Field(
        default=0.02,
        gt=0,
        lt=1,
        description="labelled share of an entity kind's users before a full run has measured it",
    )
    page_size: int = Field(default=250_000, ge=100, description="nodes per scan page")

    @classmethod
    def of(cls, settings: Settings) -> RingParams:
        """The rule of a deployment: the defaults, with its window (FRAUDRING_RING_WINDOW_DAYS)."""
        return cls(window_days=settings.ring_window_days)


#: Why a ring is suspicious: two or more labelled members tied by unusual sharing
#: (graph.ringevidence.evidence_rings), a group beyond a household where most such groups turned out
#: rings (graph.ringshape), or its size alone (RingParams.size_flag).
FlaggedBy = Literal["labels", "shape", "size"]


class Ring(BaseModel):
    id: str
    size: int
    suspicious: bool = Field(
        description="two or more labelled members tied by unusual sharing, or a group beyond "
        "a household where most such groups turned out rings (graph.rings, graph.ringshape)"
    )
    flagged_by: FlaggedBy | None = Field(
        default=None, description="why it is suspicious: labels, shape or size (None: it is not)"
    )
    members: list[str]
    shared_entities: list[EntityRef]
    density: float = Field(description="linked member pairs / all member pairs")
    fraud_n: int = Field(description="members labelled fraud or with a fraud-labelled txn")
    fraud_rate: float
    amount: float = Field(description="sum of the members' transaction amounts")
    account_age_days: float = Field(description="mean age of the members' first activity")
    first_activity: float
    last_activity: float
    risk: float
    created_at: float
    updated_at: float
    gcn_score: float | None = None


class RingUpdate(BaseModel):
    full: bool
    examined_users: int
    rings: list[Ring] = Field(description="rings created or updated by this run")
    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    events: int = Field(default=0, description="ring events recorded (graph.ringevents)")
    seconds: float = 0.0


RingEventKind = Literal[
    "appeared", "grew", "shrank", "split", "split_off", "merged", "merged_into", "dissolved"
]


class RingEvent(BaseModel):
    """A change of a ring's membership seen by one detection run (graph.ringevents)."""

    id: str = Field(default="", description="the change's id: the same change seen twice is one")
    ring_id: str
    kind: RingEventKind
    at: float = Field(description="when the detection run saw it (epoch s)")
    as_of: float = Field(description="the newest transaction the run saw (epoch s)")
    seq: int = Field(default=0, description="order among the run's events")
    size: int = Field(description="the ring's size after it (0: the ring is gone)")
    joined: list[str] = Field(default_factory=list, description="members who joined")
    left: list[str] = Field(default_factory=list, description="members who left")
    related: list[str] = Field(
        default_factory=list, description="the other rings: split pieces, merged rings, absorber"
    )


class GraphNode(BaseModel):
    kind: EntityKind
    id: str
    props: dict[str, float | int | str | None] = Field(default_factory=dict)


class GraphEdge(BaseModel):
    user_id: str
    kind: EntityKind
    entity_id: str
    n: int
    amount_sum: float
    fraud_n: int
    first_seen: float
    last_seen: float


class Neighbourhood(BaseModel):
    start: EntityRef
    hops: int
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    truncated: bool = Field(description="True when max_nodes stopped the expansion")


class GraphPath(BaseModel):
    nodes: list[EntityRef] = Field(description="empty when no path within max_hops")
    length: int
    through_hubs: bool = Field(
        default=False,
        description="the path needs a merchant or an entity over the hub cap: no shorter-tied "
        "path (devices, IPs, cards of few accounts) exists within max_hops",
    )
    note: str = ""


#: Node feature columns of `GraphExport.x`, in order.
EXPORT_FEATURES: Final[tuple[str, ...]] = (
    "is_user",
    "is_card",
    "is_device",
    "is_ip",
    "is_merchant",
    "log_degree",
    "log_n",
    "log_amount",
    "fraud_txn_n",
    "legit_txn_n",
    "age_days",
    "idle_days",
)


@dataclass
class GraphExport:
    """The whole graph as arrays for PyG.

    `edge_index` is 2 x 2E int64 holding every user-entity edge in both directions (user ->
    entity first, then the reverses). `y` is 1 fraud, 0 legitimate, -1 unknown. Node `i` is
    `(kind[i], ids[i])`; `index[(kind, id)]` is the reverse map.
    """

    kind: npt.NDArray[np.int8]  # index into KINDS
    ids: list[str]
    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int8]
    edge_index: npt.NDArray[np.int64]
    edge_attr: npt.NDArray[np.float32]  # per directed edge: log1p(n), log1p(amount), fraud_n
    feature_names: tuple[str, ...] = EXPORT_FEATURES
    index: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return len(self.ids)
