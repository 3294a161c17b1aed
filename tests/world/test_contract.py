"""`fraudring load` validates through the shared contract: a row it keeps is a request the API
accepts and the other way round; card numbers never reach the output."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fraudring.contract.ids import holds_pan
from fraudring.contract.transaction import Transaction, context
from fraudring.errors import InvalidInput
from world.loaders import parse_columns, validate
from world.rowcheck import Rules

NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC).timestamp()
RULES = Rules(amount_cap=10_000.0, now=NOW)
CTX = context(amount_cap=10_000.0, max_future_skew_s=300, now=NOW)
FIELDS = ("txn", "user", "card", "device", "ip", "merchant", "amount", "time", "currency")
COLUMNS = parse_columns(",".join(f"{f}={f}" for f in FIELDS))
REQUEST = {
    "txn": "txn_id",
    "user": "user_id",
    "card": "card_id",
    "device": "device_id",
    "ip": "ip",
    "merchant": "merchant_id",
}
PAN = "4111111111111111"

ids = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True),
    st.sampled_from(["", "  ", "u-1 ", " u-1", "a\x01b", "x" * 129, "é-ü", "a\u200bb"]),
    st.sampled_from([PAN, "4111 1111 1111 1111", f"tok_{PAN}", f"{PAN}=2512", "４" + PAN[1:]]),
    st.text(max_size=8),
)
amounts = st.one_of(
    st.decimals(min_value=0, max_value=20_000, places=2, allow_nan=False).map(str),
    st.sampled_from(["", "abc", "-1", "0", "nan", "inf", "1e400", " 3.5 ", "1,5", "9999.99"]),
)
times = st.one_of(
    st.builds(
        lambda d, off: d.replace(tzinfo=timezone(timedelta(minutes=off))).isoformat(),
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2027, 6, 1)),
        st.sampled_from([0, 60, -300, 330, 840]),
    ),
    st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2026, 1, 1)).map(
        lambda d: d.isoformat() + "Z"
    ),
    st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2026, 1, 1)).map(
        datetime.isoformat
    ),
    st.sampled_from(
        ["", "yesterday", "2026-13-01T00:00:00Z", "2026-01-05", "0001-01-01T00:00:00+00:01"]
    ),
)
ips = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(["", "999.1.1.1", "10.0.0", "::1", "2001:DB8::1", "localhost"]),
)
currencies = st.sampled_from(["", "EUR", "USD", "usd", "XXX", "EURO", "JPY"])


def _api(row: dict[str, str]) -> Transaction | None:
    """The request a client would send for the row (blank cells absent, the loader's defaults
    for a missing txn id and currency), validated as the API does."""
    body: dict[str, Any] = {}
    for field, name in REQUEST.items():
        if row[field].strip():
            body[name] = row[field]
    body.setdefault("txn_id", "row-2")
    body["amount"] = row["amount"].strip()
    body["ts"] = row["time"].strip()
    body["currency"] = row["currency"].strip() or "USD"
    try:
        return Transaction.model_validate(body, context=CTX)
    except ValidationError:
        return None


def _load(row: dict[str, str]) -> dict[str, Any] | None:
    table = pa.table({f: pa.array([row[f]], pa.string()) for f in FIELDS})
    try:
        df, keep, _ = validate(
            table, COLUMNS, label_delay_days=7.0, rules=RULES, rows=np.array([2])
        )
    except InvalidInput as exc:
        refused = exc.message
    else:
        return df.iloc[0].to_dict() if keep[0] else None
    assert "card numbers" in refused and not holds_pan(refused)
    return None


good = {
    "txn": st.from_regex(r"t[a-z0-9_-]{0,12}", fullmatch=True),
    "user": st.from_regex(r"u[a-z0-9_-]{0,12}", fullmatch=True),
    "card": st.one_of(st.just(""), st.from_regex(r"tok_[a-f0-9]{1,12}", fullmatch=True)),
    "device": st.one_of(st.just(""), st.from_regex(r"d[a-z0-9]{0,12}", fullmatch=True)),
    "ip": st.one_of(st.just(""), st.ip_addresses().map(str)),
    "merchant": st.one_of(st.just(""), st.from_regex(r"m[a-z0-9]{0,12}", fullmatch=True)),
    "amount": st.decimals(min_value="0.01", max_value=9999, places=2).map(str),
    "time": st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2026, 11, 1)).map(
        lambda d: d.isoformat() + "Z"
    ),
    "currency": st.sampled_from(["", "EUR", "USD", "JPY"]),
}
anything = {
    "txn": ids, "user": ids, "card": ids, "device": ids, "ip": ips, "merchant": ids,
    "amount": amounts, "time": times, "currency": currencies,
}  # fmt: skip


@st.composite
def rows(draw: st.DrawFn) -> dict[str, str]:
    """A good row with up to two fields drawn from anything (good or not)."""
    row = {f: draw(good[f]) for f in FIELDS}
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=2, unique=True)):
        row[field] = draw(anything[field])
    return row


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(row=rows())
def test_load_keeps_exactly_the_rows_the_api_accepts(row: dict[str, str]) -> None:
    api, loaded = _api(row), _load(row)
    assert (api is None) == (loaded is None), (api, loaded)
    if api is not None and loaded is not None:
        assert loaded["user_id"] == api.user_id and loaded["card_id"] == api.card_id
        assert loaded["ip"] == api.ip and loaded["currency"] == api.currency
        assert loaded["amount"] == api.amount
        assert loaded["ts"] == round(api.epoch * 1e6)


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDRING_")}
    return subprocess.run(
        [sys.executable, "-m", "fraudring.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**keep, **env},
    )


CSV = (
    "id,customer,card,amt,when\n"
    "1,alice,tok_a1,12.50,2026-01-05T10:00:00Z\n"
    f"2,bob,{PAN},3,2026-01-05T11:00:00Z\n"
    "3,carol,tok_c3,7,2026-01-05T12:00:00\n"
    "4,dave,4111-1111-1111-1111,9,2026-01-05T13:00:00+01:00\n"
)
MAP = "txn=id,user=customer,card=card,amount=amt,time=when"


def _no_pan_under(out: Path) -> None:
    for file in out.rglob("*"):
        if file.is_file():
            assert PAN.encode() not in file.read_bytes(), file
            if file.suffix == ".parquet":
                for col in pq.read_table(file).columns:
                    assert not any(isinstance(v, str) and holds_pan(v) for v in col.to_pylist())


def test_load_refuses_card_numbers_naming_rows_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(CSV)
    run = _cli("load", "--input", "in.csv", "--columns", MAP, "--out", "w", cwd=tmp_path)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    err = " ".join(run.stderr.split())
    assert "column card: rows 3, 5" in err and PAN not in err and "1111-1111" not in err
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


def test_load_tokenizes_card_numbers_with_a_key_and_announces_defaults(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(CSV)
    args = ("load", "--input", "in.csv", "--columns", MAP, "--out", "w", "--tokenize-cards")
    run = _cli(*args, cwd=tmp_path)
    assert run.returncode != 0 and "FRAUDRING_CARD_TOKEN_KEY" in run.stderr
    key = "k" * 32
    run = _cli(*args, cwd=tmp_path, FRAUDRING_CARD_TOKEN_KEY=key)
    assert run.returncode == 0, run.stderr
    out = " ".join(run.stdout.split())
    assert "time without a timezone" in out  # row 4 (line 4): no zone, no --assume-tz
    assert "assumed currency: USD for 4 rows" in out
    cards = pq.read_table(tmp_path / "w" / "transactions.parquet").column("card_id").to_pylist()
    assert len(cards) == 3 and cards[0] == "tok_a1"
    assert cards[1] == cards[2] and cards[1].startswith("tok_")  # the same card, one token
    _no_pan_under(tmp_path / "w")
    run = _cli(*args, "--assume-tz", "Europe/Paris", cwd=tmp_path, FRAUDRING_CARD_TOKEN_KEY=key)
    assert run.returncode == 0 and "loaded 4 rows" in " ".join(run.stdout.split())
    _no_pan_under(tmp_path / "w")


def test_tokenize_cards_covers_a_user_column_keyed_by_card_number(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(
        f"id,card,amt,when,device\n1,{PAN},12.50,2026-01-05T10:00:00Z,d1\n"
        f"2,{PAN},3,2026-01-05T11:00:00Z,d1\n3,tok_c3,7,2026-01-05T12:00:00Z,{PAN}\n"
    )
    args = ("load", "--input", "in.csv", "--out", "w", "--tokenize-cards", "--no-summary")
    by_card = "txn=id,user=card,card=card,amount=amt,time=when"
    run = _cli(*args, "--columns", by_card, cwd=tmp_path, FRAUDRING_CARD_TOKEN_KEY="k" * 32)
    assert run.returncode == 0, run.stderr
    table = pq.read_table(tmp_path / "w" / "transactions.parquet")
    users, cards = table.column("user_id").to_pylist(), table.column("card_id").to_pylist()
    assert users == cards and users[0] == users[1] != "tok_c3" and users[0].startswith("tok_")
    _no_pan_under(tmp_path / "w")
    run = _cli(
        *args, "--columns", by_card + ",device=device", cwd=tmp_path,
        FRAUDRING_CARD_TOKEN_KEY="k" * 32,
    )  # fmt: skip
    assert run.returncode == 2 and "column device: rows 4" in " ".join(run.stderr.split())


def test_training_refuses_a_world_holding_ids_the_contract_refuses(tmp_path: Path) -> None:
    from gnn.dataset import load_frames
    from world.simulate import generate

    generate(out=tmp_path / "w", transactions=2000, seed=1, progress=False)
    load_frames(tmp_path / "w")  # a generated world is clean
    file = tmp_path / "w" / "transactions.parquet"
    table = pq.read_table(file)
    users = table.column("user_id").to_pylist()
    users[7] = f"tok_{PAN}"
    pq.write_table(table.set_column(2, "user_id", pa.array(users, pa.string())), file)
    with pytest.raises(InvalidInput, match="column user_id holds 1 id") as info:
        load_frames(tmp_path / "w")
    assert PAN not in info.value.message


def test_an_amount_over_the_cap_names_the_cap_and_its_setting() -> None:
    table = pa.table({"u": ["u1", "u2"], "a": ["9999.99", "10000"], "t": ["1767612000"] * 2})
    _, keep, reasons = validate(
        table, parse_columns("user=u,amount=a,time=t"), label_delay_days=7.0, rules=RULES
    )
    assert keep.tolist() == [True, False]
    assert reasons[1] == ["amount at or above the cap of 10,000.00 (FRAUDRING_AMOUNT_CAP)"]
