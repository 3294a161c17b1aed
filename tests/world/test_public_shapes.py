"""`fraudring load` on the shapes public fraud and AML data sets come in."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudring.contract.ids import holds_pan
from fraudring.errors import InvalidInput
from world.amlsim import load_amlsim
from world.io import read_meta, read_world, ring_members
from world.loaders import load_table, parse_columns
from world.rowcheck import Rules, amounts, card_token, parse_times
from world.sources import unique_names

# IBM's "Transactions for Anti Money Laundering" (HI-Small_Trans.csv): two columns named Account
IBM_AML = """Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,\
Amount Paid,Payment Currency,Payment Format,Is Laundering
2022/09/01 00:20,010,8000EBD30,010,8000EBD30,3697.34,US Dollar,3697.34,US Dollar,Reinvestment,0
2022/09/01 00:20,03208,8000F4580,001,8000F5340,0.01,US Dollar,0.01,US Dollar,Cheque,1
"""
# AMLSim's output transactions.csv: ALERT_ID -1 for a transfer in no alert
AMLSIM_OUT = """TX_ID,SENDER_ACCOUNT_ID,RECEIVER_ACCOUNT_ID,TX_TYPE,TX_AMOUNT,TIMESTAMP,IS_FRAUD,ALERT_ID
1,100,200,TRANSFER,120.5,0,False,-1
2,101,201,TRANSFER,130.5,1,True,0
3,102,101,TRANSFER,140.5,2,True,0
4,103,202,TRANSFER,150.5,3,False,-1
"""


@given(st.lists(st.sampled_from(["a", "b", "a.1", "Account", "Account.1", ""]), max_size=8))
def test_repeated_names_are_numbered_and_the_rest_kept(names: list[str]) -> None:
    got = unique_names(names)
    assert len(set(got)) == len(got) == len(names)
    first = {n: got[names.index(n)] for n in names}
    assert all(first[n] == n for n in names)  # a name's first column keeps it
    assert all(g == n or g.startswith(f"{n}.") for n, g in zip(names, got, strict=True))


def test_two_columns_named_alike_are_mapped_as_name_and_name_1(tmp_path: Path) -> None:
    (tmp_path / "hi.csv").write_text(IBM_AML)
    columns = "user=Account,payee=Account.1,amount=Amount Paid,time=Timestamp,label=Is Laundering"
    report = load_table(
        src=tmp_path / "hi.csv",
        out=tmp_path / "w",
        columns=parse_columns(columns),
        rules=Rules(assume_tz="UTC"),
    )
    assert report.loaded == 2 and not report.rejected  # year-first slash dates read too
    txns = read_world(tmp_path / "w").transactions.to_pandas()
    pairs = zip(txns["user_id"], txns["payee_user_id"], txns["merchant_id"], strict=True)
    assert sorted(pairs) == [  # the payee's account is the counterparty
        ("8000EBD30", "8000EBD30", "8000EBD30"),
        ("8000F4580", "8000F5340", "8000F5340"),
    ]
    assert txns["ts"].min() == pd.Timestamp("2022-09-01T00:20:00Z")


def test_year_first_slash_dates_read_as_iso_and_others_stay_bad() -> None:
    column = pa.chunked_array([["2022/09/01 00:20", "2022/09/01T00:20:00Z", "09/01/2022 00:20"]])
    ts, bad, _ = parse_times(column, Rules(assume_tz="UTC"))
    assert ts[:2].tolist() == [1_661_991_600_000_000] * 2
    assert bad.tolist() == [False, False, True]  # month or day first is ambiguous: refused


def test_an_amlsim_alert_id_of_minus_one_is_no_ring(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(AMLSIM_OUT)
    columns = (
        "user=SENDER_ACCOUNT_ID,payee=RECEIVER_ACCOUNT_ID,amount=TX_AMOUNT,time=TIMESTAMP,"
        "label=IS_FRAUD,txn=TX_ID,ring=ALERT_ID"
    )
    rules = Rules(time_unit="d", time_origin=1_767_225_600.0)
    load_table(
        src=tmp_path / "tx.csv", out=tmp_path / "w", columns=parse_columns(columns), rules=rules
    )
    w = read_world(tmp_path / "w")
    # alert 0 is a ring: the accounts that sent its transfers and those they paid
    assert ring_members(w.truth, w.transactions) == {"0": {"101", "102", "201"}}
    assert read_meta(tmp_path / "w")["counts"]["rings"] == 1


def test_a_folder_without_the_sample_files_names_the_option_given(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="--amlsim must be an AMLSim sample folder"):
        load_amlsim(src=tmp_path, out=tmp_path / "w")


# IBM's TabFormer card transactions: the time in four columns, a card numbered per user, "$" amounts
TABFORMER = """User,Card,Year,Month,Day,Time,Amount,Merchant Name,MCC,Is Fraud?
0,0,2002,9,1,06:21,$134.09,3527213246127876953,5300,No
0,1,2002,9,2,6:22,"$1,120.43",-727612092139916043,5411,Yes
1,0,2002,10,12,17:45,-$5.00,3527213246127876953,5300,No
"""


def test_a_field_read_from_several_columns(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(TABFORMER)
    columns = (
        "user=User,card=User+Card,time=Year+Month+Day+Time,amount=Amount,"
        "merchant=Merchant Name,label=Is Fraud?"
    )
    report = load_table(
        src=tmp_path / "t.csv",
        out=tmp_path / "w",
        columns=parse_columns(columns),
        rules=Rules(assume_tz="UTC"),
    )
    assert (report.loaded, report.rejected) == (2, 1)  # a refund of -$5.00 is no payment
    txns = read_world(tmp_path / "w").transactions.to_pandas()
    assert txns["card_id"].tolist() == ["0:0", "0:1"]
    assert txns["ts"].dt.strftime("%Y-%m-%dT%H:%M").tolist() == [
        "2002-09-01T06:21",
        "2002-09-02T06:22",
    ]
    assert txns["amount"].tolist() == [134.09, 1120.43]
    with pytest.raises(InvalidInput, match=r"card=User\+Cards: column\(s\) Cards not in"):
        load_table(
            src=tmp_path / "t.csv", out=tmp_path / "x", columns=parse_columns(
                "user=User,card=User+Cards,time=Year+Month+Day+Time,amount=Amount"),
            rules=Rules(assume_tz="UTC"),
        )  # fmt: skip


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False))
def test_an_amount_written_with_a_currency_sign_reads_as_its_number(value: Decimal) -> None:
    text = pd.Series([f"${value:,.2f}", f"$ {value:.2f}", f"{value:.2f}", f"{value:,.2f} $"])
    got = amounts(text)
    assert got[:3].tolist() == [float(value)] * 3
    assert np.isnan(got[3])  # a sign after the number: refused


def test_merchant_ids_that_look_like_card_numbers_are_hashed_when_asked(tmp_path: Path) -> None:
    """TabFormer's merchant ids are 19-digit numbers, about one in ten passing Luhn."""
    merchant = "3527213246127876952"  # 19 digits passing the Luhn check
    assert holds_pan(merchant)
    (tmp_path / "t.csv").write_text(TABFORMER.replace("3527213246127876953", merchant))
    columns = parse_columns(
        "user=User,time=Year+Month+Day+Time,amount=Amount,merchant=Merchant Name"
    )
    key = b"k" * 32
    with pytest.raises(InvalidInput, match="column Merchant Name: rows 2"):
        load_table(src=tmp_path / "t.csv", out=tmp_path / "a", columns=columns,
                   rules=Rules(assume_tz="UTC", card_key=key))  # fmt: skip
    rules = Rules(assume_tz="UTC", card_key=key, tokenized=("card", "user", "merchant"))
    load_table(src=tmp_path / "t.csv", out=tmp_path / "w", columns=columns, rules=rules)
    got = read_world(tmp_path / "w").transactions.column("merchant_id").to_pylist()
    assert got[0].startswith("tok_") and got[1] == "-727612092139916043"
    with pytest.raises(InvalidInput, match="--tokenize-fields: shop is no id field"):
        Rules(tokenized=("card", "shop"))


def test_a_card_token_never_looks_like_a_card_number() -> None:
    """Hex tokens held a Luhn-valid run of digits about once in 700: the world then failed the
    contract at training time (`refuse_bad_ids`), after a load that had passed."""
    numbers = (f"4{n:015d}" for n in range(0, 3_000_000_000, 1_000_003))
    tokens = [card_token(b"k" * 32, n) for n in numbers]
    assert len(set(tokens)) == len(tokens) and all(t.startswith("tok_") for t in tokens)
    assert not [t for t in tokens if holds_pan(t)]


def test_an_account_numbered_like_a_card_is_one_token_as_payer_and_as_payee(
    tmp_path: Path,
) -> None:
    """Account ids that pass the Luhn check, hashed by --tokenize-cards: the same account is
    the same token as payer and as payee, so its transfers still meet in the graph."""
    acct = "4111111111111111"
    (tmp_path / "t.csv").write_text(
        "from,to,amount,time\n"
        f"{acct},B2,10,2026-01-05T10:00:00Z\n"
        f"B2,{acct},9,2026-01-05T11:00:00Z\n"
    )
    columns = parse_columns("user=from,payee=to,amount=amount,time=time")
    load_table(src=tmp_path / "t.csv", out=tmp_path / "w", columns=columns,
               rules=Rules(card_key=b"k" * 32))  # fmt: skip
    txns = read_world(tmp_path / "w").transactions.to_pandas()
    token = txns["user_id"][0]
    assert token.startswith("tok_") and acct not in token
    assert txns["payee_user_id"].tolist() == ["B2", token]
    assert txns["merchant_id"].tolist() == ["B2", token]
