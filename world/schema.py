"""The on-disk layout every producer (simulate, load, handbook) writes and every consumer reads.

A world directory holds:

- ``transactions.parquet``: what the system may see, sorted by ``ts`` then ``txn_id``.
- ``labels.parquet``: chargeback / confirmed-legit labels with the moment they arrived.
- ``truth.parquet``: ground truth per transaction, kept apart so nothing leaks into features.
- ``meta.json``: generator or loader parameters, seed, counts.

Entity columns may be null where a source has no such entity (e.g. no device in the handbook).
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

TRANSACTIONS = pa.schema(
    [
        pa.field("txn_id", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("card_id", pa.string()),
        pa.field("device_id", pa.string()),
        pa.field("ip", pa.string()),
        pa.field("merchant_id", pa.string()),
        pa.field("amount", pa.float64(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("merchant_category", pa.string()),
        # A transfer's receiving user (merchant_id is then the payee's account); null otherwise.
        pa.field("payee_user_id", pa.string()),
    ]
)

LABELS = pa.schema(
    [
        pa.field("txn_id", pa.string(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),  # 1 fraud (chargeback), 0 legitimate
        pa.field("label_ts", TS, nullable=False),  # when the label reached the fraud team
    ]
)

TRUTH = pa.schema(
    [
        pa.field("txn_id", pa.string(), nullable=False),
        pa.field("is_fraud", pa.bool_(), nullable=False),
        pa.field("ring_id", pa.string()),  # planted ring, null for non-ring transactions
        pa.field("typology", pa.string()),  # synthetic_identity, card_testing, ato, mule, ...
        pa.field("user_is_ring_member", pa.bool_(), nullable=False),
    ]
)

TRANSACTIONS_FILE = "transactions.parquet"
LABELS_FILE = "labels.parquet"
TRUTH_FILE = "truth.parquet"
META_FILE = "meta.json"
