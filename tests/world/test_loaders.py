"""Loaders: column mapping, row validation with row numbers, the handbook, and the CLI."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fraudring.errors import InvalidInput
from world import schema
from world.handbook import load_handbook
from world.io import read_meta, read_world, ring_members
from world.loaders import FIELDS, REQUIRED, load_table, parse_columns, validate
from world.rowcheck import Rules, time_reason

TIME_REASON = time_reason(Rules())

ROOT = Path(__file__).resolve().parents[2]
HANDBOOK = ROOT / "../shared/datasets/fraud-detection-handbook/transactions.parquet"

CSV_TEXT = """id,customer,card,shop,amt,when,fraud
1,alice,c1,m1,12.50,2026-01-05T10:00:00Z,0
2,bob,c2,m1,abc,2026-01-05T11:00:00Z,
3,,c3,m2,5,2026-01-05T12:00:00Z,1
4,carol,c4,m2,7.25,not-a-date,0
5,dave,c5,m3,9.99,1767612000,fraud
6,erin,c6
7,frank,c7,m3,-3,2026-01-05T13:00:00Z,0
8,gina,c8,m3,3,2026-01-05T14:00:00+01:00,maybe
1,alice,c1,m1,12.50,2026-01-06T10:00:00Z,0
9,hal,,m1,4,2026-01-05T09:00:00Z,
"""
MAPPING = "txn=id,user=customer,card=card,merchant=shop,amount=amt,time=when,label=fraud"


def _rejected(out: Path) -> dict[int, str]:
    with (out / "rejected.csv").open() as fh:
        return {int(r["row"]): r["reasons"] for r in csv.DictReader(fh)}


def test_csv_malformed_rows_are_reported_with_line_numbers(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(CSV_TEXT)
    report = load_table(src=src, out=tmp_path / "w", columns=parse_columns(MAPPING))
    assert (report.loaded, report.rejected) == (3, 7)
    rejected = _rejected(tmp_path / "w")
    assert rejected == {
        3: "bad amount (not a positive number)",
        4: "missing user",
        5: TIME_REASON,
        7: "expected 7 fields, got 3",
        8: "bad amount (not a positive number)",
        9: "bad label",
        10: "duplicate txn id",
    }
    w = read_world(tmp_path / "w")
    assert w.transactions.schema.equals(schema.TRANSACTIONS)
    tx = w.transactions.to_pandas()
    assert tx["txn_id"].tolist() == ["9", "1", "5"]  # sorted by time
    assert tx["device_id"].isna().all() and tx["ip"].isna().all()  # absent columns -> null
    assert w.transactions.column("card_id").to_pylist() == [None, "c1", "c5"]  # empty cell -> null
    assert tx["ts"].iloc[2] == pd.Timestamp(1767612000, unit="s", tz="UTC")
    labels = w.labels.to_pandas()
    assert labels.set_index("txn_id")["label"].to_dict() == {"1": 0, "5": 1}  # "9" unlabelled
    tx_ts = tx.set_index("txn_id").loc[labels["txn_id"], "ts"].reset_index(drop=True)
    assert (labels["label_ts"].reset_index(drop=True) - tx_ts == pd.Timedelta(days=7)).all()
    assert w.truth.column("is_fraud").to_pylist() == [False, False, True]
    assert w.meta["counts"]["rejected"] == 7


def test_parquet_typed_columns_label_time_and_null_user(tmp_path: Path) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    src = tmp_path / "in.parquet"
    pq.write_table(
        pa.table(
            {
                "uid": pa.array([17, None, 19, 20], type=pa.int64()),
                "value": [10, 20, 30, 40],
                "at": pa.array([t0, t0, t0 + timedelta(hours=1), t0], type=pa.timestamp("ms")),
                "cb": [True, False, None, True],
                "cb_at": [t0 + timedelta(days=3), None, None, t0 - timedelta(days=1)],
                "dev": ["d1", "d1", None, "d2"],
            }
        ),
        src,
    )
    cols = "user=uid,amount=value,time=at,label=cb,label_time=cb_at,device=dev"
    naive = load_table(src=src, out=tmp_path / "w", columns=parse_columns(cols))
    assert naive.loaded == 0 and any("without a timezone" in r for r in naive.reasons)
    report = load_table(
        src=src, out=tmp_path / "w", columns=parse_columns(cols), rules=Rules(assume_tz="UTC")
    )
    assert _rejected(tmp_path / "w") == {2: "missing user", 4: "label time before the transaction"}
    assert report.loaded == 2
    w = read_world(tmp_path / "w")
    tx = w.transactions.to_pandas()
    assert tx["user_id"].tolist() == ["17", "19"]
    assert tx["txn_id"].tolist() == ["row-1", "row-3"]
    assert tx["amount"].tolist() == [10.0, 30.0]
    labels = w.labels.to_pandas()
    assert labels["txn_id"].tolist() == ["row-1"]
    assert labels["label_ts"].iloc[0] == pd.Timestamp(t0 + timedelta(days=3))


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_table(src=tmp_path / "none.csv", out=tmp_path / "w", columns=parse_columns(MAPPING))
    src = tmp_path / "in.csv"
    src.write_text(CSV_TEXT)
    with pytest.raises(InvalidInput, match=r"'nope' \(for user\) not in the input"):
        load_table(
            src=src, out=tmp_path / "w", columns=parse_columns("user=nope,amount=amt,time=when")
        )
    with pytest.raises(InvalidInput, match=r"handbook file .* not found"):
        load_handbook(src=tmp_path / "missing.parquet", out=tmp_path / "w")
    ctl = tmp_path / "ctl.csv"
    ctl.write_text(
        "user,amt,when,card\nok,5,2026-01-01T00:00:00Z,c1\n"
        f"u\x01x,5,2026-01-01T00:00:00Z,c1\nu2,5,2026-01-01T00:00:00Z,{'c' * 129}\n"
    )
    report = load_table(
        src=ctl,
        out=tmp_path / "w2",
        columns=parse_columns("user=user,amount=amt,time=when,card=card"),
    )
    assert (report.loaded, report.rejected) == (1, 2)
    assert _rejected(tmp_path / "w2") == {
        3: "bad user id: must contain printable characters only (no control or format characters)",
        4: "bad card id: must be at most 128 characters",
    }
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(b"user,amt,when\nu\xe9,5,2026-01-01T00:00:00Z\n")
    with pytest.raises(InvalidInput, match="not a readable CSV file"):
        load_table(src=latin, out=tmp_path / "w", columns=parse_columns(MAPPING))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user=a,amount=b", "required field"),
        ("user=a,amount=b,time=c,user=d", "given twice"),
        ("user=a,amount=b,time=c,colour=d", "unknown field 'colour'"),
        ("user=a,amount=b,time", "is not FIELD=COLUMN"),
        ("user=a,amount=,time=c", "is not FIELD=COLUMN"),
        ("", "required field"),
    ],
)
def test_parse_columns_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_columns(text)


column_names = st.text(
    alphabet=st.characters(blacklist_characters=",=", blacklist_categories=["Cs", "Zs", "Cc"]),
    min_size=1,
    max_size=12,
)


@given(
    extra=st.lists(st.sampled_from([f for f in FIELDS if f not in REQUIRED]), unique=True),
    names=st.lists(column_names, min_size=12, max_size=12),
    spaces=st.booleans(),
)
def test_parse_columns_round_trip(extra: list[str], names: list[str], spaces: bool) -> None:
    fields = [*REQUIRED, *extra]
    mapping = dict(zip(fields, names, strict=False))
    sep = " , " if spaces else ","
    text = sep.join(f"{f.upper() if spaces else f}={c}" for f, c in mapping.items())
    assert parse_columns(text) == {f: c.strip() for f, c in mapping.items()}


@given(st.text(max_size=60))
def test_parse_columns_never_crashes(text: str) -> None:
    try:
        mapping = parse_columns(text)
    except InvalidInput as exc:
        message = exc.message
    else:
        assert set(REQUIRED) <= set(mapping) <= set(FIELDS)
        return
    assert message.startswith("--columns: ")


amounts = st.one_of(
    st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False).map(str),
    st.sampled_from(["", "abc", "-1", "nan", "inf", "1e400", " 3.5 ", "1,5"]),
)
times = st.one_of(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)).map(
        lambda d: d.isoformat() + "Z"
    ),
    st.integers(min_value=0, max_value=4_000_000_000).map(str),
    st.sampled_from(["", "yesterday", "2026-13-01T00:00:00Z", "-5", "99999999999"]),
)
users = st.one_of(st.text(max_size=6), st.just(""), st.just("   "))


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(users, amounts, times), min_size=1, max_size=25))
@example([("0\x1f", "1", "2026-01-01T00:00:00Z"), ("a\x01b", "1", "2026-01-01T00:00:00Z")])
def test_every_row_is_kept_valid_or_rejected(rows: list[tuple[str, str, str]]) -> None:
    table = pa.table(
        {"u": [r[0] for r in rows], "a": [r[1] for r in rows], "t": [r[2] for r in rows]}
    )
    df, keep, reasons = validate(
        table, parse_columns("user=u,amount=a,time=t"), label_delay_days=7.0
    )
    assert len(df) == len(rows)
    assert set(reasons) == set((~keep).nonzero()[0].tolist())
    for i, (user, amount, _) in enumerate(rows):
        if keep[i]:
            stored = str(df["user_id"].iloc[i])  # trimmed: "0\x1f" is kept as "0"
            assert stored != "" and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in stored)
            assert float(df["amount"].iloc[i]) >= 0
            assert 0 <= int(df["ts"].iloc[i]) < 4_102_444_800_000_000
        else:
            assert reasons[i]
        if not user.strip():
            assert "missing user" in reasons[i]
        if amount.strip() in {"abc", "-1", "nan", "inf", "1e400", "1,5", ""}:
            assert any(r.startswith("bad amount") for r in reasons[i])


@pytest.mark.skipif(not HANDBOOK.is_file(), reason="../shared/datasets handbook file not present")
def test_handbook_slice(tmp_path: Path) -> None:
    first = next(pq.ParquetFile(HANDBOOK).iter_batches(batch_size=20_000))
    src = tmp_path / "slice.parquet"
    pq.write_table(pa.Table.from_batches([first]), src)
    report = load_handbook(src=src, out=tmp_path / "hb")
    assert (report.loaded, report.rejected) == (20_000, 0)
    raw = first.to_pandas().set_index("TRANSACTION_ID")
    w = read_world(tmp_path / "hb")
    tx = w.transactions.to_pandas()
    truth = w.truth.to_pandas()
    one = tx.iloc[0]
    src_row = raw.loc[int(one["txn_id"].removeprefix("hb"))]
    assert one["user_id"] == f"c{src_row['CUSTOMER_ID']}"
    assert one["card_id"] == f"card-c{src_row['CUSTOMER_ID']}"
    assert one["merchant_id"] == f"term{src_row['TERMINAL_ID']}"
    assert one["amount"] == pytest.approx(src_row["TX_AMOUNT"])
    assert tx["device_id"].isna().all()
    assert truth["is_fraud"].sum() == raw["TX_FRAUD"].sum() > 0
    fraud_typ = truth.loc[truth["is_fraud"], "typology"]
    assert set(fraud_typ) <= {"high_amount", "compromised_terminal", "compromised_customer"}
    assert truth.loc[~truth["is_fraud"], "typology"].isna().all()
    labels = w.labels.to_pandas().merge(tx[["txn_id", "ts"]], on="txn_id")
    assert len(labels) == 20_000
    assert ((labels["label_ts"] - labels["ts"]) == pd.Timedelta(days=7)).all()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudring.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_simulate_summary_and_picture(tmp_path: Path) -> None:
    run = _cli(
        "simulate",
        "--transactions",
        "20000",
        "--seed",
        "3",
        "--out",
        "w",
        "--summary",
        "--picture",
        "rings.png",
        "--no-progress",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "planted rings by typology" in run.stdout
    assert "fraud rate" in run.stdout
    assert (tmp_path / "rings.png").stat().st_size > 20_000
    assert (tmp_path / "w" / schema.TRUTH_FILE).is_file()


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    run = _cli("load", "--input", "x.csv", "--columns", "user=a", "--out", "w", cwd=tmp_path)
    assert run.returncode == 2
    assert "required field(s) missing: amount, time" in run.stderr.replace("\n", " ")
    assert "Traceback" not in run.stderr
    run = _cli("load", "--handbook", "--out", "w", cwd=tmp_path)
    assert run.returncode == 2
    assert "handbook file" in run.stderr and "Traceback" not in run.stderr
    run = _cli(
        "simulate", "--transactions", "5000", "--out", "w", "--difficulty", "x", cwd=tmp_path
    )
    assert run.returncode == 2 and "difficulty" in run.stderr


def test_a_ring_members_everyday_transfer_makes_its_payee_no_member(tmp_path: Path) -> None:
    """Every row a mule sends is marked with its ring; the account its fraud fed is the
    ring's, the mother it sends money to every month is not."""
    src = tmp_path / "p2p.csv"
    src.write_text(
        "user,payee,amount,time,label,case\n"
        "m1,m2,900,2026-01-01T00:00:00Z,1,ring-1\n"
        "m2,cash,850,2026-01-01T02:00:00Z,1,ring-1\n"
        "m1,mother,50,2026-01-02T00:00:00Z,0,ring-1\n"
        "m2,landlord,700,2026-01-03T00:00:00Z,,ring-1\n"
    )
    out = tmp_path / "w"
    columns = "user=user,payee=payee,amount=amount,time=time,label=label,ring=case"
    load_table(src=src, out=out, columns=parse_columns(columns))
    w = read_world(out)
    assert ring_members(w.truth, w.transactions) == {"ring-1": {"m1", "m2", "cash"}}


def test_ring_column_becomes_ring_truth(tmp_path: Path) -> None:
    src = tmp_path / "cases.csv"
    src.write_text(
        "user,amount,time,case\n"
        "u1,10,2026-01-01T00:00:00Z,case-7\n"
        "u2,11,2026-01-01T01:00:00Z,case-7\n"
        "u3,12,2026-01-01T02:00:00Z,\n"
        "u1,13,2026-01-02T00:00:00Z,case-7\n"
    )
    out = tmp_path / "w"
    load_table(
        src=src, out=out, columns=parse_columns("user=user,amount=amount,time=time,ring=case")
    )
    w = read_world(out)
    assert ring_members(w.truth, w.transactions) == {"case-7": {"u1", "u2"}}
    assert read_meta(out)["counts"]["rings"] == 1


def test_payee_column_names_transfers_whose_account_is_the_counterparty(tmp_path: Path) -> None:
    """`payee=COLUMN`: each row's receiving account is a user of the world and, with no merchant
    column, the row's counterparty; a bad payee id rejects its row by number."""
    src = tmp_path / "transfers.csv"
    src.write_text(
        "from,to,amount,time\n"
        "A1,A2,10,2026-01-05T10:00:00Z\n"
        "A2,A3,9,2026-01-05T11:00:00Z\n"
        "A3, A1,8,2026-01-05T12:00:00Z\n"
        "A4,,7,2026-01-05T13:00:00Z\n"
    )
    report = load_table(
        src=src,
        out=tmp_path / "w",
        columns=parse_columns("user=from,payee=to,amount=amount,time=time"),
    )
    assert (report.loaded, report.rejected) == (3, 1)
    assert _rejected(tmp_path / "w")[4].startswith("bad payee id")
    txns = read_world(tmp_path / "w").transactions.to_pandas()
    assert txns["payee_user_id"].fillna("-").tolist() == ["A2", "A3", "-"]
    assert txns["merchant_id"].fillna("-").tolist() == ["A2", "A3", "-"]
    # a world written by hand with a card number as payee: refused before training reads it
    from gnn.dataset import load_frames

    tx = tmp_path / "w" / schema.TRANSACTIONS_FILE
    table = pq.read_table(tx)
    at = table.schema.get_field_index("payee_user_id")
    pans = pa.array(["4111111111111111", "A3", None], type=pa.string())
    pq.write_table(table.set_column(at, "payee_user_id", pans), tx)
    with pytest.raises(InvalidInput, match="column payee_user_id holds 1 id"):
        load_frames(tmp_path / "w")
