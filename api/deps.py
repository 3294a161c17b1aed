"""Per-request access to what the app holds (engine, settings), typed."""

from __future__ import annotations

from fastapi import Request

from fraudring.settings import Settings
from realtime.service import DecisionEngine


def engine(request: Request) -> DecisionEngine:
    eng: DecisionEngine = request.app.state.engine
    return eng


def settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s
