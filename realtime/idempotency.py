"""The compact idempotency record of a decision (``{p}decision:{txn_id}``).

It keeps what a retry needs and nothing more (well under 100 bytes, so a 48-hour window of
decisions stays small): the hash of the canonical request body, the decision, score, model
version, decision time and the degraded flag. A `review` also keeps its whole answer, for
`Settings.review_keep_s` rather than the idempotency window: it is the one copy the review queue
shows its explanation from (reviews are a few percent of decisions). A retry with the same body
gets the decision back (an approve or decline without its explanation); another body under the
same txn_id is a conflict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from fraudring.errors import Conflict

SEP = "|"
CODES = {"approve": "a", "review": "r", "decline": "d"}
DECISIONS = {v: k for k, v in CODES.items()}
NOTE_REPLAY = "replay: the decision stored for this txn_id (explanations are not kept)"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


@dataclass(frozen=True, slots=True)
class Remembered:
    body_hash: str | None  # None for a record written before hashes were kept
    decision: str
    score: float | None
    model_version: str | None
    decided_at: float
    degraded: bool
    #: the whole answer: kept for a review, and in records written before the compact form
    full: bytes | None = None

    def dumps(self) -> bytes:
        score = "" if self.score is None else f"{self.score:.6g}"
        parts = (
            self.body_hash or "",
            CODES[self.decision],
            score,
            self.model_version or "",
            f"{self.decided_at:.3f}",
            "1" if self.degraded else "0",
        )
        head = SEP.join(parts).encode()
        return head + SEP.encode() + self.full if self.full is not None else head

    @classmethod
    def loads(cls, raw: bytes) -> Remembered:
        if raw.startswith(b"{"):  # a full decision body, as older versions stored it
            body = orjson.loads(raw)
            return cls(
                body_hash=None,
                decision=body["decision"],
                score=body.get("score"),
                model_version=body.get("model_version"),
                decided_at=float(body.get("decided_at", 0.0)),
                degraded=bool(body.get("degraded")),
                full=raw,
            )
        parts = raw.split(SEP.encode(), 6)
        h, d, score, version, at, degraded = (p.decode() for p in parts[:6])
        return cls(
            full=parts[6] if len(parts) > 6 else None,
            body_hash=h or None,
            decision=DECISIONS[d],
            score=float(score) if score else None,
            model_version=version or None,
            decided_at=float(at),
            degraded=degraded == "1",
        )

    def check(self, txn_id: str, body_hash: str) -> None:
        """A retry must carry the same body: another one under a used id is refused."""
        if self.body_hash is not None and self.body_hash != body_hash:
            raise IdempotencyConflict(
                f"txn_id {txn_id!r} was already decided for another transaction body; "
                "a retry must send the same body, a new transaction a new txn_id",
                detail={"errors": [{"field": "txn_id", "reason": "already used for another body"}]},
            )

    def answer(self, txn_id: str, *, review_means: str | None) -> bytes:
        """The answer to a retry: the whole one when kept, else rebuilt without explanation."""
        if self.full is not None:
            return self.full
        answer: dict[str, Any] = {
            "txn_id": txn_id,
            "decision": self.decision,
            "score": None if self.score is None or math.isnan(self.score) else self.score,
            "review_means": review_means if self.decision == "review" else None,
            "degraded": self.degraded,
            "model_version": self.model_version,
            "decided_at": self.decided_at,
            "explanation": {"rules": [], "contributions": [], "ring": None, "notes": [NOTE_REPLAY]},
        }
        return orjson.dumps(answer)
