"""Rules: the safe expression language, refusal with names, reload keeping the old rules; policy."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime.features import FEATURE_NAMES, INDEX
from realtime.policy import Thresholds, decide
from realtime.rules import RulesError, RulesHolder, load_rules, parse_condition, parse_rules


def feats(**values: float) -> list[float]:
    row = [math.nan] * len(FEATURE_NAMES)
    for k, v in values.items():
        row[INDEX[k]] = v
    return row


def test_conditions_evaluate_like_python_arithmetic() -> None:
    cond = parse_condition("amount * 2 - 1 > 10 and not (hour < 3 or hour >= 22)")
    assert cond(feats(amount=6, hour=12))
    assert not cond(feats(amount=5, hour=12))
    assert not cond(feats(amount=6, hour=23))
    assert parse_condition("1 < amount <= 5")(feats(amount=5))
    assert parse_condition("-amount < -3")(feats(amount=4))
    assert parse_condition("amount / 0 > 1")(feats(amount=4)) is False  # div by 0 is NaN


def test_missing_features_never_satisfy_a_comparison() -> None:
    for text in ("device_users_7d >= 5", "device_users_7d < 5", "device_users_7d == 0"):
        assert not parse_condition(text)(feats())


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("__import__('os').system('x')", "not allowed"),
        ("amount.real > 1", "Attribute is not allowed"),
        ("open('f')", "Call is not allowed"),
        ("amount > 'x'", "only numbers"),
        ("amount > True", "only numbers"),
        ("amount ** 2 > 1", "Pow is not allowed"),
        ("amount in (1, 2)", "In is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("[amount][0] > 1", "not allowed"),
        ("nonsense > 1", "unknown feature 'nonsense'"),
        ("amount >", "syntax error"),
        ("", "non-empty"),
    ],
)
def test_anything_else_is_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_condition(text)


@given(st.text(max_size=40))
def test_parser_never_crashes_and_never_runs_code(text: str) -> None:
    try:
        cond = parse_condition(text)
    except ValueError:
        return
    cond(feats(amount=1.0))  # any accepted text is a pure function of the features


GOOD = """
rules:
  - name: big
    when: amount > 100
    action: review
  - name: bump
    when: amount > 50
    action: add_score
    score: 0.2
"""


def test_a_bad_rule_refuses_the_file_naming_each_rule() -> None:
    bad = (
        GOOD
        + """
  - name: broken
    when: amount >
    action: decline
  - name: wrong_action
    when: amount > 1
    action: block
  - name: big
    when: amount > 1
    action: decline
  - name: no_score
    when: amount > 1
    action: add_score
"""
    )
    with pytest.raises(RulesError) as info:
        parse_rules(bad, source="x.yaml")
    msg = info.value.message
    for part in (
        "rule 'broken': when: syntax error",
        "rule 'wrong_action': action must be one of",
        "rule 'big': duplicate name",
        "rule 'no_score': add_score needs a numeric score",
    ):
        assert part in msg
    with pytest.raises(RulesError, match="not valid YAML"):
        parse_rules("rules: [", source="y")
    with pytest.raises(RulesError, match="expected a mapping"):
        parse_rules("- a", source="y")


def test_default_rules_load() -> None:
    names = {r.name for r in load_rules(None).rules}
    assert {"card_testing_burst", "known_bad_ring"} <= names


def test_a_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "rules.yaml"
    f.write_bytes(b"\x00\xff\xfe")
    with pytest.raises(RulesError, match="not UTF-8 text"):
        load_rules(f)


def test_reload_swaps_good_files_and_keeps_old_rules_on_bad(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD)
    holder = RulesHolder(path)
    assert [r.name for r in holder.ruleset.rules] == ["big", "bump"]
    path.write_text(GOOD.replace("amount > 100", "amount >> 2"))
    os.utime(path, (1, 1))
    assert not holder.reload_if_changed()
    assert [r.name for r in holder.ruleset.rules] == ["big", "bump"]
    assert holder.error is not None and "rule 'big'" in holder.error
    path.write_text("rules:\n  - name: only\n    when: amount > 1\n    action: decline\n")
    os.utime(path, (2, 2))
    assert holder.reload_if_changed()
    assert [r.name for r in holder.ruleset.rules] == ["only"] and holder.error is None
    assert not holder.reload_if_changed()  # unchanged file: nothing to do


def test_rule_evaluation_fires_matching_rules() -> None:
    rs = parse_rules(GOOD)
    assert [r.name for r in rs.evaluate(feats(amount=120))] == ["big", "bump"]
    assert [r.name for r in rs.evaluate(feats(amount=60))] == ["bump"]
    assert rs.evaluate(feats()) == []


T = Thresholds(review=0.5, decline=0.9)


def test_policy_thresholds_and_add_score() -> None:
    rs = parse_rules(GOOD)
    (bump,) = [r for r in rs.rules if r.name == "bump"]
    (big,) = [r for r in rs.rules if r.name == "big"]
    assert decide(model_score=0.1, fired=[], thresholds=T).decision == "approve"
    assert decide(model_score=0.5, fired=[], thresholds=T).decision == "review"
    assert decide(model_score=0.95, fired=[], thresholds=T).decision == "decline"
    v = decide(model_score=0.4, fired=[bump], thresholds=T)
    assert v.decision == "review" and v.score == pytest.approx(0.6)
    # a hard review rule raises an approve, never lowers a model decline
    assert decide(model_score=0.1, fired=[big], thresholds=T).decision == "review"
    assert decide(model_score=0.99, fired=[big], thresholds=T).decision == "decline"


def test_policy_without_model_is_rules_only() -> None:
    hard = parse_rules("rules:\n  - name: d\n    when: amount > 1\n    action: decline\n")
    v = decide(model_score=None, fired=list(hard.rules), thresholds=T)
    assert v.decision == "decline" and v.score is None
    assert decide(model_score=None, fired=[], thresholds=T).decision == "approve"


def test_thresholds_from_manifest_else_settings() -> None:
    assert Thresholds.pick({"review": 0.3, "decline": 0.7}, review=0.5, decline=0.9) == Thresholds(
        0.3, 0.7
    )
    assert Thresholds.pick(None, review=0.5, decline=0.9) == Thresholds(0.5, 0.9)
    assert Thresholds.pick({"review": 0.8, "decline": 0.2}, review=0.5, decline=0.9) == T
