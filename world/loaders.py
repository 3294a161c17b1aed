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
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fraudring.errors import InvalidInput
from fraudring.logs import get_logger
from graph.schemas import CONTROL_PATTERN, MAX_ID_LEN
from world import schema
from world.io import parquet_errors, write_world

log = get_logger(__name__)

FIELDS = (
    "txn",
    "user",
    "card",
    "device",
    "ip",
    "merchant",
    "amount",
    "time",
    "label",
    "label_time",
    "currency",
    "category",
    "ring",
)
REQUIRED = ("user", "amount", "time")
ENTITY_FIELDS = {"card": "card_id", "device": "device_id", "ip": "ip", "merchant": "merchant_id"}
FRAUD_WORDS = {"1", "1.0", "true", "t", "yes", "y", "fraud", "chargeback"}
LEGIT_WORDS = {"0", "0.0", "false", "f", "no", "n", "legit", "legitimate", "genuine"}
US_PER_DAY = 86_400_000_000
MAX_TS_US = 4_102_444_800_000_000  # 2100-01-01


@dataclass
class LoadReport:
    loaded: int
    rejected: int
    reasons: dict[str, int] = field(default_factory=dict)
    rejected_file: Path | None = None


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


def read_source(src: Path) -> tuple[pa.Table, np.ndarray, list[tuple[int, str]]]:
    """The file's table, each kept row's number, and CSV rows with the wrong field count."""
    if not src.is_file():
        raise InvalidInput(f"input file {src} does not exist")
    if src.suffix.lower() in {".parquet", ".pq"}:
        with parquet_errors(src):
            table = pq.read_table(src)
        return table, np.arange(1, table.num_rows + 1), []
    try:
        with src.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"{src} is not a readable CSV file (UTF-8 text): {exc}") from None
    if not header:
        raise InvalidInput(f"{src} is empty: a CSV file needs a header line")
    bad: list[tuple[int, str]] = []

    def on_bad(row: Any) -> str:
        bad.append(
            (int(row.number), f"expected {row.expected_columns} fields, got {row.actual_columns}")
        )
        return "skip"

    try:
        table = pacsv.read_csv(
            src,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())),
        )
    except pa.ArrowInvalid as exc:
        raise InvalidInput(f"{src} is not a readable CSV file: {exc}") from exc
    lines = np.setdiff1d(np.arange(2, 2 + table.num_rows + len(bad)), [b[0] for b in bad])
    return table, lines, bad


def _trimmed(table: pa.Table, column: str) -> pa.ChunkedArray:
    values = table.column(column)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = pc.cast(values, pa.string())
    return pc.utf8_trim_whitespace(values)


def _text(table: pa.Table, column: str) -> pd.Series:
    # Python objects with None for missing: pandas' own string/NaN handling varies by version.
    return pd.Series(_trimmed(table, column).to_pylist(), dtype=object)


def _bad_ids(table: pa.Table, column: str) -> np.ndarray:
    """Ids (as `_text` trims them) too long or holding a control character, in Arrow."""
    values = _trimmed(table, column)
    wrong = pc.or_(
        pc.greater(pc.utf8_length(values), MAX_ID_LEN),
        pc.match_substring_regex(values, CONTROL_PATTERN),
    )
    return np.asarray(pc.fill_null(wrong, False).to_numpy(zero_copy_only=False), dtype=bool)


def parse_times(table: pa.Table, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Epoch microseconds and a bad-value mask; accepts timestamps, epoch seconds, ISO 8601."""
    col = table.column(column)
    n = table.num_rows
    if pa.types.is_timestamp(col.type):
        us = pc.cast(pc.cast(col, pa.timestamp("us", tz=col.type.tz)), pa.int64())
        arr = us.to_numpy(zero_copy_only=False).astype("float64")
        bad = np.isnan(arr) if arr.dtype.kind == "f" else np.zeros(n, dtype=bool)
        ts = np.nan_to_num(arr).astype(np.int64)
    else:
        text = _text(table, column)
        secs = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64")
        ts = np.zeros(n, dtype=np.int64)
        numeric = np.isfinite(secs)
        ts[numeric] = np.round(secs[numeric] * 1e6).astype(np.int64)
        iso = pd.to_datetime(text[~numeric], errors="coerce", utc=True, format="ISO8601")
        ok = iso.notna().to_numpy()
        rest = np.flatnonzero(~numeric)
        naive = iso[ok].dt.tz_convert("UTC").dt.tz_localize(None)
        ts[rest[ok]] = naive.to_numpy().astype("datetime64[us]").astype(np.int64)
        bad = np.ones(n, dtype=bool)
        bad[numeric] = False
        bad[rest[ok]] = False
    bad |= (ts < 0) | (ts >= MAX_TS_US)
    return ts, bad


def validate(
    table: pa.Table, columns: dict[str, str], *, label_delay_days: float, currency: str = "USD"
) -> tuple[pd.DataFrame, np.ndarray, dict[int, list[str]]]:
    """Normalised rows, a keep mask, and per-row reasons for the rejected ones."""
    if not label_delay_days >= 0:
        raise InvalidInput(f"label_delay_days must be >= 0, got {label_delay_days}")
    absent = [f"{c!r} (for {f})" for f, c in columns.items() if c not in table.column_names]
    if absent:
        raise InvalidInput(
            f"column(s) {', '.join(absent)} not in the input; "
            f"it has: {', '.join(table.column_names)}"
        )
    n = table.num_rows
    reasons: dict[int, list[str]] = {}

    def flag(mask: np.ndarray, reason: str) -> None:
        for i in np.flatnonzero(mask).tolist():
            reasons.setdefault(i, []).append(reason)

    user = _text(table, columns["user"])
    flag(user.isna().to_numpy() | (user == "").to_numpy(), "missing user")
    amount_raw = table.column(columns["amount"])
    if pa.types.is_integer(amount_raw.type) or pa.types.is_floating(amount_raw.type):
        amount = pc.cast(amount_raw, pa.float64()).to_numpy(zero_copy_only=False)
    else:
        amount = pd.to_numeric(_text(table, columns["amount"]), errors="coerce").to_numpy("float64")
    flag(~np.isfinite(amount) | (amount < 0), "bad amount (not a non-negative number)")
    ts, bad_ts = parse_times(table, columns["time"])
    flag(bad_ts, "bad time (not a timestamp, ISO 8601 or epoch seconds)")
    df = pd.DataFrame({"user_id": user, "amount": amount, "ts": ts})
    for f, out_col in ENTITY_FIELDS.items():
        df[out_col] = _text(table, columns[f]).replace("", None) if f in columns else None
    df["currency"] = (
        _text(table, columns["currency"]).fillna(currency) if "currency" in columns else currency
    )
    df["merchant_category"] = _text(table, columns["category"]) if "category" in columns else None
    # A confirmed ring (a case id) per row: ring truth for `evaluate`, never a feature.
    df["ring_id"] = _text(table, columns["ring"]).replace("", None) if "ring" in columns else None
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
        lts, bad_lts = parse_times(table, columns["label_time"])
        given = _text(table, columns["label_time"]).fillna("").to_numpy() != ""
        flag(given & bad_lts, "bad label time")
        flag(given & ~bad_lts & (lts < ts), "label time before the transaction")
        df.loc[given & ~bad_lts, "label_ts"] = lts[given & ~bad_lts]
    txn = _text(table, columns["txn"]) if "txn" in columns else pd.Series([None] * n, dtype=object)
    df["txn_id"] = txn.where(txn.notna() & (txn != ""), None)
    dup = df["txn_id"].notna().to_numpy() & df["txn_id"].duplicated().to_numpy()
    flag(dup, "duplicate txn id")
    # The graph store's id contract: such an id could be neither stored nor decided on.
    for name in ("user", *ENTITY_FIELDS, "txn", "ring"):
        if name in columns:
            flag(
                _bad_ids(table, columns[name]),
                f"bad {name} id (over {MAX_ID_LEN} characters or a control character)",
            )
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
    )


def load_table(
    *,
    src: Path,
    out: Path,
    columns: dict[str, str],
    label_delay_days: float = 7.0,
    currency: str = "USD",
) -> LoadReport:
    """A CSV or Parquet file with the given column mapping into a world directory."""
    table, rows, bad_rows = read_source(src)
    df, keep, reasons = validate(
        table, columns, label_delay_days=label_delay_days, currency=currency
    )
    meta = {
        "kind": "loaded",
        "source": src.name,
        "columns": columns,
        "params": {"label_delay_days": label_delay_days},
    }
    return finish(
        out=out, df=df, keep=keep, reasons=reasons, rows=rows, bad_rows=bad_rows, meta=meta
    )
