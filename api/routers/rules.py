"""GET /v1/rules (investigate) and POST /v1/rules/reload (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.auth import require
from api.deps import engine
from api.errors import documented
from api.schemas import RulesOut
from realtime.rules import RuleSet
from realtime.service import DecisionEngine

router = APIRouter(prefix="/v1/rules", tags=["rules"], responses=documented(401, 403, 422))


def _describe(rs: RuleSet, error: str | None) -> dict[str, Any]:
    return {
        "source": rs.source,
        "rules": [
            {"name": r.name, "when": r.when, "action": r.action, "score": r.score} for r in rs.rules
        ],
        "last_error": error,
    }


@router.get(
    "",
    response_model=RulesOut,
    summary="The rules in force",
    dependencies=[Depends(require("investigate"))],
)
async def list_rules(eng: Annotated[DecisionEngine, Depends(engine)]) -> dict[str, Any]:
    return _describe(eng.rules.ruleset, eng.rules.error)


@router.post(
    "/reload",
    response_model=RulesOut,
    summary="Reload the rules file now; a bad file is refused (422) and the old rules stay",
    dependencies=[Depends(require("admin"))],
    responses=documented(422, e422="the rules file is invalid; the old rules stay in force"),
)
async def reload_rules(eng: Annotated[DecisionEngine, Depends(engine)]) -> dict[str, Any]:
    return _describe(eng.rules.reload(), None)
