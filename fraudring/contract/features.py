"""The model's feature vector: names and order, one definition for the online engine
(realtime.features, from Redis) and the offline trainer (gnn.features, point in time)."""

from __future__ import annotations

from typing import Final

TABULAR_FEATURES: Final[tuple[str, ...]] = (
    "amount", "log_amount", "hour", "weekday",
    "user_n_1h", "user_n_24h", "user_n_7d", "user_amt_1h", "user_amt_24h", "user_amt_7d",
    "card_n_1h", "card_n_24h", "card_n_7d", "card_amt_24h",
    "device_n_1h", "device_n_24h", "device_amt_24h",
    "ip_n_1h", "ip_n_24h", "ip_amt_24h",
    "merchant_n_1h", "merchant_n_24h",
    "user_devices_7d", "user_cards_7d", "user_ips_7d",
    "device_users_7d", "ip_users_7d", "card_users_7d",
    "user_secs_since_last", "user_new_device", "user_new_card", "user_new_ip",
)  # fmt: skip
#: Per-entity cached ring risk in ENTITY_KINDS order, then the largest ring's size and rate.
GRAPH_FEATURES: Final[tuple[str, ...]] = (
    "user_risk", "card_risk", "device_risk", "ip_risk", "merchant_risk",
    "ring_size", "ring_fraud_rate",
)  # fmt: skip
#: The merchant's known fraud and the user's usual amount and spikes (gnn.entitystats), served
#: from the workers' cached statistics and the velocity script (ages and the ratio use the
#: request's own ts and amount).
STATS_FEATURES: Final[tuple[str, ...]] = (
    "merchant_fraud_rate_1d", "merchant_fraud_rate_7d", "merchant_fraud_rate_28d",
    "merchant_fraud_first_age_days", "merchant_fraud_last_age_days",
    "merchant_cpp_frauds_28d", "merchant_cpp_rate_28d",
    "user_median_amount_30d", "amount_to_user_median",
    "user_n_30d", "user_mean_amount_30d", "user_spikes_7d", "user_spikes_14d",
)  # fmt: skip
#: The last four, from the velocity script (the user's calendar days and spikes).
USER_WINDOW_FEATURES: Final[tuple[str, ...]] = STATS_FEATURES[-4:]
FEATURE_NAMES: Final[tuple[str, ...]] = TABULAR_FEATURES + GRAPH_FEATURES + STATS_FEATURES
#: What the velocity Lua script returns, in this order (everything after the request's own four).
VELOCITY_FEATURES: Final[tuple[str, ...]] = TABULAR_FEATURES[4:]
INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(FEATURE_NAMES)}
