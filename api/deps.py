"""Per-request access to what the app holds (engine, settings), typed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from fraudring.settings import Settings
from realtime.service import DecisionEngine

#: Where a page starts: bounded so offset + limit stays a 64-bit integer for Redis (ZRANGE).
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="rows to skip")]


def engine(request: Request) -> DecisionEngine:
    eng: DecisionEngine = request.app.state.engine
    return eng


def settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s
