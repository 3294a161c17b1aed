"""The fraud-detection-handbook benchmark (Le Borgne et al.) in the world layout.

CUSTOMER_ID becomes the user and its card (the data has one card per customer), TERMINAL_ID
the merchant terminal; there are no devices or IPs. Every transaction's TX_FRAUD becomes a label
known ``label_delay_days`` after it (the handbook's protocol: all labels, genuine ones too, arrive
after the delay); truth keeps TX_FRAUD and the scenario as typology.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudring.errors import InvalidInput
from world.loaders import LoadReport, finish, validate
from world.rowcheck import Rules

COLUMNS = (
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
)
#: No handbook time is after this (its data ends in 2018); a fixed "now" keeps loads repeatable.
HANDBOOK_NOW = 4_102_444_800.0  # 2100-01-01
SCENARIOS = {1: "high_amount", 2: "compromised_terminal", 3: "compromised_customer"}


def _prefixed(col: pa.ChunkedArray, prefix: str) -> pa.ChunkedArray:
    text = pc.cast(col, pa.string())
    return pc.binary_join_element_wise(prefix, text, "")


def load_handbook(
    *, src: Path, out: Path, label_delay_days: float = 7.0, limit: int | None = None
) -> LoadReport:
    """Convert the handbook's transactions.parquet; `limit` keeps only the first rows."""
    if not src.is_file():
        raise InvalidInput(
            f"handbook file {src} not found: pass --input PATH to the handbook's "
            "transactions.parquet (see ../shared/datasets/fraud-detection-handbook/README.md)"
        )
    try:
        pf = pq.ParquetFile(src)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"{src} is not a readable Parquet file: {exc}") from exc
    missing = [c for c in COLUMNS if c not in pf.schema_arrow.names]
    if missing:
        raise InvalidInput(f"{src} is not the handbook file: missing columns {', '.join(missing)}")
    raw = pf.read(columns=list(COLUMNS))
    if limit is not None:
        raw = raw.slice(0, limit)
    customer = raw.column("CUSTOMER_ID")
    table = pa.table(
        {
            "txn": _prefixed(raw.column("TRANSACTION_ID"), "hb"),
            "user": _prefixed(customer, "c"),
            "card": _prefixed(customer, "card-c"),
            "merchant": _prefixed(raw.column("TERMINAL_ID"), "term"),
            "amount": raw.column("TX_AMOUNT"),
            "time": raw.column("TX_DATETIME"),
            "label": raw.column("TX_FRAUD"),
        }
    )
    columns = {f: f for f in table.column_names}
    # The handbook writes its times without a zone; they are UTC (its generator's clock).
    rules = Rules(assume_tz="UTC", now=HANDBOOK_NOW)
    df, keep, reasons = validate(table, columns, label_delay_days=label_delay_days, rules=rules)
    scen = raw.column("TX_FRAUD_SCENARIO").to_numpy(zero_copy_only=False)
    fraud = df["label"].to_numpy() == 1
    typ = np.full(raw.num_rows, None, dtype=object)
    for code, name in SCENARIOS.items():
        typ[(scen == code) & fraud] = name
    targets = ("txn_id", "ts", "user_id+card_id", "merchant_id", "amount", "label", "typology")
    meta = {
        "kind": "handbook",
        "source": src.name,
        "params": {"label_delay_days": label_delay_days},
        "columns": dict(zip(COLUMNS, targets, strict=True)),
    }
    return finish(
        out=out,
        df=df,
        keep=keep,
        reasons=reasons,
        rows=np.arange(1, raw.num_rows + 1),
        bad_rows=[],
        meta=meta,
        truth_typology=pd.Series(typ, dtype=object),
    )
