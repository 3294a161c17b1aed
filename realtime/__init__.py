"""The decision engine: validation, velocity, cached graph risk, XGBoost, rules, policy. No torch."""
