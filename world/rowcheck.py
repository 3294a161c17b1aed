"""The shared contract (fraudring.contract) applied to whole Arrow columns of a loaded file, so
a row `fraudring load` keeps is a transaction the API would accept.

The common case (printable ASCII ids, ISO times with an offset) is checked in Arrow; only the
values it cannot clear go through the contract's Python checks, once per distinct value.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraudring.contract.currencies import ISO_4217
from fraudring.contract.ids import (
    FAST_ID_PATTERN,
    MANY_DIGITS_PATTERN,
    PAN_REASON,
    check_ip,
    first_problems,
    holds_pan,
)
from fraudring.contract.transaction import (
    DEFAULT_AMOUNT_CAP,
    DEFAULT_MAX_FUTURE_SKEW_S,
    DEFAULT_MIN_TS,
    iso,
)
from fraudring.errors import InvalidInput

#: A date and a time ("2026-01-05T10:00"), as the API requires.
DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt ]\d"
YMD_SLASHES = r"^(\d{4})/(\d{2})/(\d{2})([Tt ]\d)"
#: An explicit offset or Z at the end of an ISO 8601 time.
OFFSET_PATTERN = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
TOKEN_PREFIX = "tok_"  # noqa: S105 - the prefix of card tokens, not a secret
#: Seconds per unit of a numeric time column (`--time-unit`).
TIME_UNITS = {"s": 1, "ms": 0.001, "min": 60, "h": 3600, "d": 86400}


#: Fields whose card numbers `--tokenize-cards` replaces by default, and those it may.
TOKENIZED: tuple[str, ...] = ("card", "user", "payee")
TOKENIZABLE: tuple[str, ...] = ("card", "user", "payee", "merchant", "device", "txn")


@dataclass(frozen=True)
class Rules:
    """A deployment's caps and the load's choices (from the settings and the CLI)."""

    amount_cap: float = DEFAULT_AMOUNT_CAP
    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S
    min_ts: float = DEFAULT_MIN_TS
    #: Time zone of times written without one (an IANA name such as UTC); None refuses them.
    assume_tz: str | None = None
    #: Currency of rows without one (announced in the report).
    currency: str = "USD"
    #: Key of the keyed hash that replaces card numbers in the card column; None refuses them.
    card_key: bytes | None = None
    #: "Now" for the future bound (tests pin it).
    now: float | None = None
    #: A numeric time counts `time_unit`s from this instant (epoch seconds): PaySim's step is
    #: hours from its start, IEEE-CIS's TransactionDT seconds from a reference day.
    time_origin: float = 0.0
    time_unit: str = "s"
    #: Id fields whose card numbers the key replaces: card and user (data sets key customers by
    #: card number), and those the load names (TabFormer's merchant ids are 19-digit numbers).
    tokenized: tuple[str, ...] = TOKENIZED

    def __post_init__(self) -> None:
        unknown = [f for f in self.tokenized if f not in TOKENIZABLE]
        if unknown:
            raise InvalidInput(
                f"--tokenize-fields: {', '.join(unknown)} is no id field; "
                f"one of {', '.join(TOKENIZABLE)}"
            )
        if self.time_unit not in TIME_UNITS:
            raise InvalidInput(
                f"--time-unit: {self.time_unit!r} is not one of {', '.join(TIME_UNITS)}"
            )
        if self.currency not in ISO_4217:
            raise InvalidInput(f"--currency: {self.currency!r} is not an ISO 4217 code")
        if self.assume_tz is not None:
            try:
                pd.Timestamp("2026-01-01").tz_localize(self.assume_tz)
            except Exception:  # pytz / zoneinfo raise several types
                raise InvalidInput(
                    f"--assume-tz: {self.assume_tz!r} is not a time zone name (e.g. UTC, "
                    "Europe/Paris)"
                ) from None

    @property
    def max_ts(self) -> float:
        now = self.now if self.now is not None else datetime.now(UTC).timestamp()
        return now + self.max_future_skew_s


def text(values: pa.ChunkedArray) -> pa.ChunkedArray:
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = pc.cast(values, pa.string())
    return values


def _mask(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def id_problems(values: list[str | None]) -> list[str | None]:
    """Per value, why it cannot be an id (None: it can, or it is missing)."""
    arr = pa.array(values, type=pa.string())
    fast = pc.and_(
        pc.match_substring_regex(arr, FAST_ID_PATTERN),
        pc.invert(pc.match_substring_regex(arr, MANY_DIGITS_PATTERN)),
    )
    suspect = ~_mask(fast) & _mask(pc.is_valid(arr))
    if not suspect.any():
        return [None] * len(values)
    problems = first_problems([values[i] for i in np.flatnonzero(suspect).tolist()])
    return [
        problems.get(v) if v is not None and s else None
        for v, s in zip(values, suspect, strict=True)
    ]


def refuse_bad_ids(where: str, table: pa.Table, columns: list[str]) -> None:
    """One InvalidInput for a table whose id columns hold what the contract refuses (a world
    written by an older version, or by hand): training reads only what the API would take."""
    for name in columns:
        arr = text(table.column(name))
        fast = pc.and_(
            pc.match_substring_regex(arr, FAST_ID_PATTERN),
            pc.invert(pc.match_substring_regex(arr, MANY_DIGITS_PATTERN)),
        )
        suspect = np.flatnonzero(~_mask(fast) & _mask(pc.is_valid(arr)))
        if not len(suspect):
            continue
        values = pc.take(arr, pa.array(suspect)).to_pylist()
        problems = first_problems(values)
        bad = [(int(i), problems[v]) for i, v in zip(suspect, values, strict=True) if v in problems]
        if bad:
            row, problem = bad[0]
            raise InvalidInput(
                f"{where}: column {name} holds {len(bad)} id(s) the contract refuses; "
                f"first at row {row + 1}: {problem}"
            )


#: Hex digits written as the letters a-p: a token in hex held a run of 13-19 decimal digits
#: passing Luhn about once in 700, which the contract then refused as a card number.
_HEX_AS_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


def card_token(key: bytes, value: str) -> str:
    """The keyed hash that stands for a card number: the same card, the same token, and no way
    back to the number without the key; 128 bits, in letters only, so it never looks like one."""
    digits = "".join(str(int(c)) for c in value if c.isdecimal())
    digest = hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()[:32]
    return TOKEN_PREFIX + digest.translate(_HEX_AS_LETTERS)


def pan_rows(rows: np.ndarray, mask: np.ndarray) -> str:
    numbers = rows[mask].tolist()
    shown = ", ".join(str(r) for r in numbers[:10])
    more = f" and {len(numbers) - 10} more" if len(numbers) > 10 else ""
    return f"{shown}{more}"


def refuse_pans(found: dict[str, np.ndarray], rows: np.ndarray, *, tokenize: bool) -> None:
    """One error naming the rows and columns holding card numbers; nothing is written."""
    if not found:
        return
    where = "; ".join(f"column {col}: rows {pan_rows(rows, m)}" for col, m in found.items())
    hint = (
        "card numbers are refused outside the tokenized columns (card, user, payee, and those "
        "--tokenize-fields names)"
        if tokenize
        else "map a token column as card, or pass --tokenize-cards (with "
        "FRAUDRING_CARD_TOKEN_KEY set) to replace card numbers by a keyed hash"
    )
    raise InvalidInput(f"the input holds card numbers (PANs), {where}; nothing written: {hint}")


def check_ips(values: list[str | None]) -> tuple[list[str | None], np.ndarray]:
    """Compressed addresses and a bad-value mask (one check per distinct address)."""
    seen: dict[str, str | None] = {}
    for v in set(values):
        if v is None:
            continue
        try:
            seen[v] = check_ip(v)
        except ValueError:
            seen[v] = None
    out = [None if v is None else seen[v] for v in values]
    bad = np.array([v is not None and seen[v] is None for v in values], dtype=bool)
    return out, bad


#: An amount written with a currency sign and thousands separators ("$1,234.50", TabFormer's).
_WRITTEN = r"^[$€£¥]\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?$"


def amounts(text: pd.Series) -> np.ndarray:
    """Amounts from text: numbers, or written with a leading currency sign and commas between
    thousands; NaN for anything else (a sign after the number, a comma decimal: refused)."""
    out = np.array(pd.to_numeric(text, errors="coerce"), dtype="float64")  # a copy: written below
    rest = np.flatnonzero(np.isnan(out))
    if len(rest):  # only what is no plain number: a regex over every row costs a second a million
        written = text.iloc[rest].str.extract(_WRITTEN)
        whole = written[0].str.replace(",", "", regex=False) + written[1].fillna("")
        out[rest] = pd.to_numeric(whole, errors="coerce").to_numpy(dtype="float64")
    return out


def currencies(values: list[str | None], default: str) -> tuple[list[str], np.ndarray, int]:
    """Codes with blanks defaulted, a bad-code mask and how many rows took the default."""
    out = [default if v is None else v for v in values]
    bad = np.array([v is not None and v not in ISO_4217 for v in values], dtype=bool)
    return out, bad, sum(v is None for v in values)


def parse_times(col: pa.ChunkedArray, rules: Rules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epoch microseconds, a bad-value mask and a no-timezone mask (refused unless the rules
    assume a zone). Accepts timestamps, ISO 8601 date-times and numbers (epoch seconds unless
    the rules give another unit and origin)."""
    n = len(col)
    naive = np.zeros(n, dtype=bool)
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None and rules.assume_tz is None:
            naive = _mask(pc.is_valid(col))
        if col.type.tz is None and rules.assume_tz is not None:
            ts_pd = pd.Series(col.to_pandas()).dt.tz_localize(
                rules.assume_tz, ambiguous="NaT", nonexistent="NaT"
            )
            arr = ts_pd.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
            bad = np.isnat(arr)
            ts = np.where(bad, 0, arr.astype(np.int64))
        else:
            us = pc.cast(pc.cast(col, pa.timestamp("us", tz=col.type.tz)), pa.int64())
            raw = us.to_numpy(zero_copy_only=False)
            bad = np.isnan(raw) if raw.dtype.kind == "f" else np.zeros(n, dtype=bool)
            ts = np.nan_to_num(raw).astype(np.int64)
    elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        units = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        ts, bad = _from_units(units, rules)
    else:
        values = pc.utf8_trim_whitespace(text(col))
        # year first with slashes (IBM's AML data: 2022/09/01 00:20) is ISO 8601 but for them
        values = pc.replace_substring_regex(values, YMD_SLASHES, r"\1-\2-\3\4")
        strings = pd.Series(values.to_pylist(), dtype=object)
        units = pd.to_numeric(strings, errors="coerce").to_numpy(dtype="float64")
        ts, not_numeric = _from_units(units, rules)
        numeric = ~not_numeric
        shaped = _mask(pc.match_substring_regex(values, DATETIME_PATTERN)) & ~numeric
        aware = shaped & _mask(pc.match_substring_regex(values, OFFSET_PATTERN))
        naive = shaped & ~aware
        bad = ~(numeric | shaped)
        if aware.any():
            got = pd.to_datetime(strings[aware], errors="coerce", utc=True, format="ISO8601")
            _put(ts, bad, np.flatnonzero(aware), got)
        if naive.any() and rules.assume_tz is not None:
            local = pd.to_datetime(strings[naive], errors="coerce", format="ISO8601")
            got = local.dt.tz_localize(rules.assume_tz, ambiguous="NaT", nonexistent="NaT")
            _put(ts, bad, np.flatnonzero(naive), got)
            naive = np.zeros(n, dtype=bool)
    naive &= ~bad
    inside = (ts >= int(rules.min_ts * 1e6)) & (ts <= int(rules.max_ts * 1e6))
    bad |= ~naive & ~inside
    return ts, bad, naive


def _from_units(units: np.ndarray, rules: Rules) -> tuple[np.ndarray, np.ndarray]:
    """Numbers of `rules.time_unit` since `rules.time_origin` as epoch microseconds, and the
    mask of values that are no such number."""
    numeric = np.isfinite(units) & (np.abs(units) < 1e13)
    ts = np.zeros(len(units), dtype=np.int64)
    us_per_unit = TIME_UNITS[rules.time_unit] * 1e6
    ts[numeric] = np.round(units[numeric] * us_per_unit).astype(np.int64) + round(
        rules.time_origin * 1e6
    )
    return ts, ~numeric


def _put(ts: np.ndarray, bad: np.ndarray, at: np.ndarray, got: pd.Series) -> None:
    ok = got.notna().to_numpy()
    utc = got[ok].dt.tz_convert("UTC").dt.tz_localize(None)
    ts[at[ok]] = utc.to_numpy().astype("datetime64[us]").astype(np.int64)
    bad[at[~ok]] = True


def epoch_offsets(col: pa.ChunkedArray, bad: np.ndarray, rules: Rules) -> np.ndarray:
    """Of the `bad` times, the numbers that fell before the earliest time because they were
    read as epoch seconds: counts from the data's start (IEEE-CIS's TransactionDT, PaySim's
    step) that need `--time-origin` and `--time-unit`."""
    out = np.zeros(len(bad), dtype=bool)
    if rules.time_origin != 0 or rules.time_unit != "s" or pa.types.is_timestamp(col.type):
        return out
    at = np.flatnonzero(bad)  # only the refused rows are read again
    cells = col.take(pa.array(at, type=pa.int64()))
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        units = pc.cast(cells, pa.float64()).to_numpy(zero_copy_only=False)
    else:
        strings = pd.Series(pc.utf8_trim_whitespace(text(cells)).to_pylist(), dtype=object)
        units = pd.to_numeric(strings, errors="coerce").to_numpy(dtype="float64")
    out[at] = np.isfinite(units) & (units >= 0) & (units < rules.min_ts)
    return out


def offset_reason(rules: Rules) -> str:
    low = iso(datetime.fromtimestamp(rules.min_ts, tz=UTC))
    return (
        f"bad time (a number read as epoch seconds falls before {low}: if it counts from the "
        "data's start, give --time-origin, and --time-unit if not seconds; a date written "
        "YYYYMMDD needs its dashes)"
    )


def time_reason(rules: Rules) -> str:
    low = iso(datetime.fromtimestamp(rules.min_ts, tz=UTC))
    if rules.time_origin == 0 and rules.time_unit == "s":
        number = "epoch seconds"
    else:
        origin = iso(datetime.fromtimestamp(rules.time_origin, tz=UTC))
        number = f"a number of {rules.time_unit} since {origin}"
    return (
        f"bad time (not an ISO 8601 date-time, a timestamp or {number}, between "
        f"{low} and {rules.max_future_skew_s:g} s from now)"
    )


def parse_origin(text: str, assume_tz: str | None) -> float:
    """`--time-origin` as epoch seconds: an ISO 8601 date or date-time, with a zone unless
    `--assume-tz` gives one."""
    try:
        at = pd.Timestamp(text)
    except (ValueError, TypeError):
        at = pd.NaT
    if pd.isna(at):
        raise InvalidInput(
            f"--time-origin: {text!r} is not an ISO 8601 date-time (e.g. 2026-01-01T00:00:00Z)"
        )
    if at.tzinfo is None:
        if assume_tz is None:
            raise InvalidInput(
                f"--time-origin: {text!r} has no timezone (add Z or an offset, or pass --assume-tz)"
            )
        try:
            at = at.tz_localize(assume_tz)
        except Exception:  # pytz / zoneinfo raise several types
            raise InvalidInput(f"--assume-tz: {assume_tz!r} is not a time zone name") from None
    return float(at.timestamp())


NAIVE_REASON = "time without a timezone (add the offset, or pass --assume-tz)"
__all__ = ["NAIVE_REASON", "PAN_REASON", "Rules", "holds_pan"]
