"""Declarative rules: a YAML list of {name, when, action[, score]} over the feature names.

`when` is a small expression language parsed with `ast` and compiled to closures: comparisons,
`and` / `or` / `not`, + - * /, numbers and feature names. Nothing is ever `eval`ed. A missing
feature is NaN, and every comparison with NaN is false, so unknown never fires a rule by accident.
A file with any bad rule is refused as a whole (naming each rule and its error) and the rules in
force stay.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from fraudring.errors import InvalidInput
from fraudring.logs import get_logger
from realtime.features import FEATURE_NAMES, INDEX

log = get_logger(__name__)

Action = Literal["decline", "review", "add_score"]
ACTIONS: tuple[str, ...] = ("decline", "review", "add_score")
Features = Sequence[float]
Expr = Callable[[Features], Any]


class RulesError(InvalidInput):
    code = "rules_invalid"


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: lambda a, b: a / b if b else math.nan,
}


def _compile(node: ast.AST) -> Expr:
    if isinstance(node, ast.Expression):
        return _compile(node.body)
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda f: all(p(f) for p in parts)
        return lambda f: any(p(f) for p in parts)
    if isinstance(node, ast.UnaryOp):
        inner = _compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda f: not inner(f)
        if isinstance(node.op, ast.USub):
            return lambda f: -inner(f)
        if isinstance(node.op, ast.UAdd):
            return inner
    if isinstance(node, ast.Compare):
        left = _compile(node.left)
        ops = []
        for op, right in zip(node.ops, node.comparators, strict=True):
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise ValueError(f"operator {type(op).__name__} is not allowed")
            ops.append((fn, _compile(right)))

        def compare(f: Features) -> bool:
            a = left(f)
            for fn, right_fn in ops:
                b = right_fn(f)
                if not fn(a, b):
                    return False
                a = b
            return True

        return compare
    if isinstance(node, ast.BinOp):
        fn = _BINARY.get(type(node.op))
        if fn is None:
            raise ValueError(f"operator {type(node.op).__name__} is not allowed")
        lhs, rhs = _compile(node.left), _compile(node.right)
        return lambda f: fn(lhs(f), rhs(f))
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"only numbers are allowed as constants, got {type(value).__name__}")
        try:
            const = float(value)
        except OverflowError:
            raise ValueError("a number too large for a float (over 1.8e308)") from None
        return lambda f: const
    if isinstance(node, ast.Name):
        if node.id not in INDEX:
            raise ValueError(f"unknown feature {node.id!r}")
        i = INDEX[node.id]
        return lambda f: f[i]
    raise ValueError(f"{type(node).__name__} is not allowed in a condition")


def parse_condition(text: str) -> Expr:
    """Compile a condition; raises ValueError with a readable reason."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("condition must be a non-empty string")
    if len(text) > 1000:
        raise ValueError("condition longer than 1000 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return _compile(tree)
    except SyntaxError as exc:
        raise ValueError(f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError("nested too deeply") from None


@dataclass(frozen=True)
class Rule:
    name: str
    when: str
    action: Action
    score: float | None
    test: Expr


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    source: str

    def evaluate(self, features: Features) -> list[Rule]:
        fired = []
        for rule in self.rules:
            try:
                hit = bool(rule.test(features))
            except (ArithmeticError, TypeError, ValueError) as exc:
                log.warning("rules.eval_failed", rule=rule.name, error=str(exc))
                continue
            if hit:
                fired.append(rule)
        return fired


def _rule(raw: Any, position: int) -> Rule:
    if not isinstance(raw, dict):
        raise RulesError(f"rule #{position}: must be a mapping with name, when, action")
    name = raw.get("name")
    label = f"rule {name!r}" if isinstance(name, str) and name else f"rule #{position}"
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise RulesError(f"{label}: name must be a non-empty string of at most 64 characters")
    unknown = set(raw) - {"name", "when", "action", "score", "description"}
    if unknown:
        raise RulesError(f"{label}: unknown keys {sorted(unknown)}")
    action = raw.get("action")
    if action not in ACTIONS:
        raise RulesError(f"{label}: action must be one of {', '.join(ACTIONS)}, got {action!r}")
    score = raw.get("score")
    if action == "add_score":
        if isinstance(score, bool) or not isinstance(score, int | float) or not -1 <= score <= 1:
            raise RulesError(f"{label}: add_score needs a numeric score in [-1, 1]")
        score = float(score)
    elif score is not None:
        raise RulesError(f"{label}: score is only for action add_score")
    try:
        test = parse_condition(raw.get("when"))  # type: ignore[arg-type]
    except ValueError as exc:
        raise RulesError(f"{label}: when: {exc}") from None
    return Rule(name=name, when=str(raw["when"]).strip(), action=action, score=score, test=test)


def parse_rules(text: str, *, source: str = "<string>") -> RuleSet:
    """Parse a whole rules file; any bad rule refuses the file with every rule's error."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from None
    raw_rules = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(raw_rules, list):
        raise RulesError(f"{source}: expected a mapping with a `rules:` list")
    rules, errors, names = [], [], set()
    for i, raw in enumerate(raw_rules, start=1):
        try:
            rule = _rule(raw, i)
        except RulesError as exc:
            errors.append(exc.message)
            continue
        if rule.name in names:
            errors.append(f"rule {rule.name!r}: duplicate name")
        names.add(rule.name)
        rules.append(rule)
    if errors:
        raise RulesError(f"{source}: " + "; ".join(errors), detail={"errors": errors})
    return RuleSet(rules=tuple(rules), source=source)


def default_rules_text() -> str:
    return resources.files("realtime").joinpath("rules.yaml").read_text()


def load_rules(path: Path | None) -> RuleSet:
    if path is None:
        return parse_rules(default_rules_text(), source="realtime/rules.yaml (default)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RulesError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    return parse_rules(text, source=str(path))


class RulesHolder:
    """The rules in force; `reload()` swaps them only when the new file parses."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.ruleset = load_rules(path)
        self.error: str | None = None
        self._mtime = self._stat()

    def _stat(self) -> float | None:
        if self.path is None:
            return None
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def reload(self) -> RuleSet:
        """Reload now; on error the old rules stay and the error is raised and remembered."""
        self._mtime = self._stat()
        try:
            new = load_rules(self.path)
        except RulesError as exc:
            self.error = exc.message
            log.error("rules.refused", error=exc.message)
            raise
        self.ruleset, self.error = new, None
        log.info("rules.loaded", source=new.source, count=len(new.rules))
        return new

    def reload_if_changed(self) -> bool:
        if self._stat() == self._mtime:
            return False
        try:
            self.reload()
        except RulesError:
            return False
        return True


__all__ = ["FEATURE_NAMES", "Rule", "RuleSet", "RulesError", "RulesHolder", "parse_rules"]
