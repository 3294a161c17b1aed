"""Thin routers, one module per area (decisions, models, rules, health; investigators later)."""
