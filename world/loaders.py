"""Real data (CSV or Parquet) into the world layout, rejecting malformed rows by row number.

Every row either becomes a transaction or is listed in ``DIR/rejected.csv`` with its row number
(CSV: the line in the file, the header being line 1; Parquet: the 1-based row) and the reasons,
so nothing is dropped silently. Truth holds the labels, and the confirmed ring of each row when
a `ring` column is mapped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraudring.contract.ids import ID_FIELDS, LINKED_KINDS
from fraudring.errors import InvalidInput
from fraudring.logs import get_logger
from world import rowcheck, schema
from world.io import write_world
from world.sources import combine, read_source

log = get_logger(__name__)

FIELDS = (
    "txn",
    "user",
    "card",
    "device",
    "ip",
    "merchant",
    "payee",
    "amount",
    "time",
    "label",
    "label_time",
    "currency",
    "category",
    "ring",
)
REQUIRED = ("user", "amount", "time")
ENTITY_FIELDS = {k: ID_FIELDS[k] for k in LINKED_KINDS}
FRAUD_WORDS = {"1", "1.0", "true", "t", "yes", "y", "fraud", "chargeback"}
LEGIT_WORDS = {"0", "0.0", "false", "f", "no", "n", "legit", "legitimate", "genuine"}
#: A ring cell meaning "in no ring" besides a blank one (AMLSim writes ALERT_ID -1).
NO_RING_WORDS = {"-1", "none", "null", "nan", "n/a", "na"}
US_PER_DAY = 86_400_000_000


@dataclass
class LoadReport:
    loaded: int
    rejected: int
    reasons: dict[str, int] = field(default_factory=dict)
    rejected_file: Path | None = None
    #: What the load assumed where the input said nothing (field -> what and for how many rows).
    defaults: dict[str, str] = field(default_factory=dict)


def parse_columns(text: str) -> dict[str, str]:
    """`user=COL,amount=COL,...` -> {field: column}; a clear error for anything else."""
    mapping: dict[str, str] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, column = item.partition("=")
        name, column = name.strip().lower(), column.strip()
        if not sep or not column:
            raise InvalidInput(f"--columns: {item!r} is not FIELD=COLUMN")
        if name not in FIELDS:
            raise InvalidInput(f"--columns: unknown field {name!r}; fields are {', '.join(FIELDS)}")
        if name in mapping:
            raise InvalidInput(f"--columns: field {name!r} given twice")
        mapping[name] = column
    missing = [f for f in REQUIRED if f not in mapping]
    if missing:
        raise InvalidInput(f"--columns: required field(s) missing: {', '.join(missing)}")
    return mapping


def _trimmed(table: pa.Table, column: str) -> pa.ChunkedArray:
    return pc.utf8_trim_whitespace(rowcheck.text(table.column(column)))


def _text(table: pa.Table, column: str) -> pd.Series:
    # Python objects with None for missing: pandas' own string/NaN handling varies by version.
    return pd.Series(_trimmed(table, column).to_pylist(), dtype=object)


def _cells(table: pa.Table, column: str) -> list[str | None]:
    """An id column as written (ids are not trimmed: the contract refuses outer whitespace),
    a blank cell meaning "absent"."""
    values = rowcheck.text(table.column(column))
    blank = pc.equal(pc.utf8_trim_whitespace(values), "")
    cells: list[str | None] = pc.if_else(blank, pa.scalar(None, pa.string()), values).to_pylist()
    return cells


def validate(
    table: pa.Table,
    columns: dict[str, str],
    *,
    label_delay_days: float,
    rules: rowcheck.Rules | None = None,
    rows: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray, dict[int, list[str]]]:
    """Normalised rows, a keep mask, and per-row reasons for the rejected ones. Card numbers
    anywhere (row numbers from `rows`) stop the load with one error, before anything is
    written, unless the rules hold a key to replace those of the card and user columns."""
    rules = rules or rowcheck.Rules()
    if not label_delay_days >= 0:
        raise InvalidInput(f"label_delay_days must be >= 0, got {label_delay_days}")
    absent = [f"{c!r} (for {f})" for f, c in columns.items() if c not in table.column_names]
    if absent:
        raise InvalidInput(
            f"column(s) {', '.join(absent)} not in the input; "
            f"it has: {', '.join(table.column_names)}"
        )
    n = table.num_rows
    numbers = rows if rows is not None else np.arange(1, n + 1)
    reasons: dict[int, list[str]] = {}

    def flag(mask: np.ndarray, reason: str) -> None:
        for i in np.flatnonzero(mask).tolist():
            reasons.setdefault(i, []).append(reason)

    ids: dict[str, list[str | None]] = {}
    pans: dict[str, np.ndarray] = {}
    for name in ("txn", "user", *ENTITY_FIELDS, "payee", "category", "ring"):
        if name not in columns or name == "ip":
            continue
        cells = _cells(table, columns[name])
        problems = rowcheck.id_problems(cells)
        is_pan = np.array([p == rowcheck.PAN_REASON for p in problems], dtype=bool)
        if is_pan.any() and name in rules.tokenized and rules.card_key is not None:
            key = rules.card_key
            cells = [
                rowcheck.card_token(key, c) if c is not None and pan else c
                for c, pan in zip(cells, is_pan, strict=True)
            ]
            problems = rowcheck.id_problems(cells)
        elif is_pan.any():
            pans[columns[name]] = is_pan
        for problem in set(problems) - {None, rowcheck.PAN_REASON}:
            flag(np.array([p == problem for p in problems]), f"bad {name} id: {problem}")
        ids[name] = cells
    rowcheck.refuse_pans(pans, numbers, tokenize=rules.card_key is not None)

    user = pd.Series(ids["user"], dtype=object)
    flag(user.isna().to_numpy(), "missing user")
    amount_raw = table.column(columns["amount"])
    if pa.types.is_integer(amount_raw.type) or pa.types.is_floating(amount_raw.type):
        amount = pc.cast(amount_raw, pa.float64()).to_numpy(zero_copy_only=False)
    else:
        amount = rowcheck.amounts(_text(table, columns["amount"]))
    flag(~np.isfinite(amount) | ~(amount > 0), "bad amount (not a positive number)")
    flag(
        np.isfinite(amount) & (amount >= rules.amount_cap),
        f"amount at or above the cap of {rules.amount_cap:,.2f} (FRAUDRING_AMOUNT_CAP)",
    )
    ts, bad_ts, naive = rowcheck.parse_times(table.column(columns["time"]), rules)
    offsets = rowcheck.epoch_offsets(table.column(columns["time"]), bad_ts, rules)
    flag(bad_ts & ~offsets, rowcheck.time_reason(rules))
    flag(offsets, rowcheck.offset_reason(rules))
    flag(naive, rowcheck.NAIVE_REASON)
    df = pd.DataFrame({"user_id": user, "amount": amount, "ts": ts})
    for f, out_col in ENTITY_FIELDS.items():
        df[out_col] = pd.Series(ids[f], dtype=object) if f in ids else None
    if "ip" in columns:
        ips, bad_ip = rowcheck.check_ips(_cells(table, columns["ip"]))
        df["ip"] = pd.Series(ips, dtype=object)
        flag(bad_ip, "bad ip (not an IPv4 or IPv6 address)")
    given = _cells(table, columns["currency"]) if "currency" in columns else [None] * n
    codes, bad_currency, defaulted = rowcheck.currencies(
        [None if c is None else c.strip() for c in given], rules.currency
    )
    df["currency"] = pd.Series(codes, dtype=object)
    flag(bad_currency, "bad currency (not an ISO 4217 code)")
    df.attrs["defaults"] = (
        {"currency": f"{rules.currency} for {defaulted:,} rows without one (--currency)"}
        if defaulted
        else {}
    )
    df["merchant_category"] = (
        pd.Series(ids["category"], dtype=object) if "category" in ids else None
    )
    # A transfer's receiving user; without a merchant column its counterparty is the payee's
    # own account (the contract's rule), so payers of one account share that node.
    df["payee_user_id"] = pd.Series(ids["payee"], dtype=object) if "payee" in ids else None
    if "payee" in ids:
        df["merchant_id"] = df["merchant_id"].where(df["merchant_id"].notna(), df["payee_user_id"])
    # A confirmed ring (a case id) per row: ring truth for `evaluate`, never a feature.
    if "ring" in ids:
        rings = [
            None if r is None or r.strip().lower() in NO_RING_WORDS else r for r in ids["ring"]
        ]
        df["ring_id"] = pd.Series(rings, dtype=object)
    else:
        df["ring_id"] = None
    df["label"] = -1
    if "label" in columns:
        word = _text(table, columns["label"]).map(
            lambda v: None if v in (None, "") else str(v).lower()
        )
        df.loc[word.isin(FRAUD_WORDS).to_numpy(), "label"] = 1
        df.loc[word.isin(LEGIT_WORDS).to_numpy(), "label"] = 0
        flag((word.notna() & ~word.isin(FRAUD_WORDS | LEGIT_WORDS)).to_numpy(), "bad label")
    df["label_ts"] = df["ts"] + int(label_delay_days * US_PER_DAY)
    if "label_time" in columns:
        lts, bad_lts, naive_lts = rowcheck.parse_times(table.column(columns["label_time"]), rules)
        bad_lts |= naive_lts
        given_lt = _text(table, columns["label_time"]).fillna("").to_numpy() != ""
        flag(given_lt & bad_lts, "bad label time")
        flag(given_lt & ~bad_lts & (lts < ts), "label time before the transaction")
        df.loc[given_lt & ~bad_lts, "label_ts"] = lts[given_lt & ~bad_lts]
    txn = pd.Series(ids["txn"] if "txn" in ids else [None] * n, dtype=object)
    df["txn_id"] = txn
    dup = df["txn_id"].notna().to_numpy() & df["txn_id"].duplicated().to_numpy()
    flag(dup, "duplicate txn id")
    keep = np.ones(n, dtype=bool)
    keep[list(reasons)] = False
    return df, keep, reasons


def finish(
    *,
    out: Path,
    df: pd.DataFrame,
    keep: np.ndarray,
    reasons: dict[int, list[str]],
    rows: np.ndarray,
    bad_rows: list[tuple[int, str]],
    meta: dict[str, Any],
    truth_typology: pd.Series | None = None,
) -> LoadReport:
    """Write the kept rows as a world and the rejected ones to DIR/rejected.csv."""
    out.mkdir(parents=True, exist_ok=True)
    defaults = dict(df.attrs.get("defaults", {}))
    df = df.assign(row=rows)
    missing_id = df["txn_id"].isna()
    df.loc[missing_id, "txn_id"] = "row-" + df.loc[missing_id, "row"].astype(str)
    if truth_typology is not None:
        df["typology"] = truth_typology.to_numpy()
    good = df[keep].sort_values(["ts", "txn_id"], kind="stable")
    ts = pa.array(good["ts"].to_numpy(), type=schema.TS)
    ids = pa.array(good["txn_id"].astype(str).to_numpy(), type=pa.string(), from_pandas=True)
    txns = pa.Table.from_arrays(
        [
            ids,
            ts,
            *(
                pa.array(good[c].to_numpy(), type=pa.string(), from_pandas=True)
                for c in ("user_id", "card_id", "device_id", "ip", "merchant_id")
            ),
            pa.array(good["amount"].to_numpy(), type=pa.float64()),
            pa.array(good["currency"].astype(str).to_numpy(), type=pa.string(), from_pandas=True),
            pa.array(good["merchant_category"].to_numpy(), type=pa.string(), from_pandas=True),
            pa.array(good["payee_user_id"].to_numpy(), type=pa.string(), from_pandas=True),
        ],
        schema=schema.TRANSACTIONS,
    )
    lab = good[good["label"] >= 0].sort_values(["label_ts", "txn_id"], kind="stable")
    labels = pa.Table.from_arrays(
        [
            pa.array(lab["txn_id"].astype(str).to_numpy(), type=pa.string(), from_pandas=True),
            pa.array(lab["label"].to_numpy().astype(np.int8)),
            pa.array(lab["label_ts"].to_numpy(), type=schema.TS),
        ],
        schema=schema.LABELS,
    )
    typ = good["typology"].to_numpy() if "typology" in good else np.full(len(good), None)
    ring = good["ring_id"] if "ring_id" in good else pd.Series([None] * len(good), dtype=object)
    truth = pa.Table.from_arrays(
        [
            ids,
            pa.array((good["label"] == 1).to_numpy()),
            pa.array(ring.to_numpy(), type=pa.string(), from_pandas=True),
            pa.array(typ, type=pa.string(), from_pandas=True),
            pa.array(ring.notna().to_numpy()),
        ],
        schema=schema.TRUTH,
    )
    rejected = [(int(rows[i]), "; ".join(why)) for i, why in reasons.items()]
    rejected += bad_rows
    rejected.sort()
    counter: dict[str, int] = {}
    for _, why in rejected:
        for part in why.split("; "):
            key = part if not part.startswith("expected ") else "wrong number of fields"
            counter[key] = counter.get(key, 0) + 1
    rej_file = out / "rejected.csv"
    rej_file.unlink(missing_ok=True)
    if rejected:
        with rej_file.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["row", "reasons"])
            w.writerows(rejected)
    counts = {
        "transactions": len(good),
        "fraud_transactions": int((good["label"] == 1).sum()),
        "labels": labels.num_rows,
        "fraud_labels": int((lab["label"] == 1).sum()),
        "users": int(good["user_id"].nunique()),
        **{f"{k}s": int(good[c].nunique()) for k, c in ENTITY_FIELDS.items()},
        "rejected": len(rejected),
        "rings": int(ring.nunique()),
        "ring_members": int(
            good.loc[ring.notna().to_numpy(), ["ring_id", "user_id"]].drop_duplicates().shape[0]
        )
        if ring.notna().any()
        else 0,
    }
    write_world(
        out,
        transactions=txns,
        labels=labels,
        truth=truth,
        meta={**meta, "counts": counts, "rings": []},
    )
    log.info("world.loaded", path=str(out), loaded=len(good), rejected=len(rejected))
    return LoadReport(
        loaded=len(good),
        rejected=len(rejected),
        reasons=counter,
        rejected_file=rej_file if rejected else None,
        defaults=defaults,
    )


def load_table(
    *,
    src: Path,
    out: Path,
    columns: dict[str, str],
    label_delay_days: float = 7.0,
    rules: rowcheck.Rules | None = None,
) -> LoadReport:
    """A CSV or Parquet file with the given column mapping into a world directory."""
    rules = rules or rowcheck.Rules()
    table, rows, bad_rows = read_source(src)
    table = combine(table, columns)
    df, keep, reasons = validate(
        table, columns, label_delay_days=label_delay_days, rules=rules, rows=rows
    )
    meta = {
        "kind": "loaded",
        "source": src.name,
        "columns": columns,
        "params": {
            "label_delay_days": label_delay_days,
            "currency": rules.currency,
            "assume_tz": rules.assume_tz,
            "time_unit": rules.time_unit,
            "time_origin": rules.time_origin,
            "cards_tokenized": rules.card_key is not None,
        },
    }
    return finish(
        out=out, df=df, keep=keep, reasons=reasons, rows=rows, bad_rows=bad_rows, meta=meta
    )
