"""From a score and fired rules to approve / review / decline.

Thresholds come from the live model's manifest (chosen there by expected cost, FP $100 / FN $550
by default) and fall back to settings. Hard rules override the model: a `decline` rule declines,
a `review` rule raises an approve to review (it never lowers a model decline). `add_score` rules
shift the score before the thresholds; with no model the base score is 0, so only rules decide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from realtime.rules import Rule

RANK = {"approve": 0, "review": 1, "decline": 2}


@dataclass(frozen=True, slots=True)
class Thresholds:
    review: float
    decline: float

    @classmethod
    def pick(
        cls, manifest: Mapping[str, float] | None, *, review: float, decline: float
    ) -> Thresholds:
        """The manifest's thresholds when it has both and they are ordered, else the defaults."""
        if manifest and "review" in manifest and "decline" in manifest:
            r, d = float(manifest["review"]), float(manifest["decline"])
            if 0 <= r <= d <= 1:
                return cls(review=r, decline=d)
        return cls(review=review, decline=decline)


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: str
    score: float | None  # model score after add_score rules; None without a model
    rules_score: float  # sum of add_score rules that fired


def decide(*, model_score: float | None, fired: Sequence[Rule], thresholds: Thresholds) -> Verdict:
    added = sum(r.score or 0.0 for r in fired if r.action == "add_score")
    base = model_score if model_score is not None else 0.0
    score = min(1.0, max(0.0, base + added))
    if score >= thresholds.decline:
        outcome = "decline"
    elif score >= thresholds.review:
        outcome = "review"
    else:
        outcome = "approve"
    for rule in fired:
        if rule.action in ("decline", "review") and RANK[rule.action] > RANK[outcome]:
            outcome = rule.action
    return Verdict(
        decision=outcome,
        score=score if model_score is not None else None,
        rules_score=added,
    )
