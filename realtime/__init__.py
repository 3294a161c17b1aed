"""The decision engine: validation, velocity, cached graph risk, XGBoost, rules. No torch."""
