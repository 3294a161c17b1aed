"""The training pipeline on a small world: registry versions, promotion rule, rollback, loading;
the evaluation report; thresholds by expected cost; the CLI's clear error on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudring.registry import ModelRegistry
from fraudring.settings import Settings, SettingsError, get_settings, load_settings
from gnn.features import FEATURE_NAMES
from gnn.metrics import average_precision
from gnn.model import GcnConfig
from gnn.pit import PitConfig
from gnn.tabular import XgbModel, choose_thresholds


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from world.simulate import generate

    out = tmp_path_factory.mktemp("world") / "w"
    generate(out=out, transactions=12_000, seed=5, days=22, fraud_rate=0.01, progress=False)
    return out


FAST = PitConfig(gcn=GcnConfig(hidden_channels=8, epochs=8, patience=8), retrain_every=10)


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return load_settings(env="dev", data_dir=tmp_path / "data", **kw)


def test_train_register_promote_rollback(tmp_path: Path, small_world: Path) -> None:
    from gnn.service import load_gcn, train_pipeline

    settings = _settings(tmp_path)
    first = train_pipeline(settings=settings, data_dir=small_world, pit=FAST)
    reg = ModelRegistry(settings.models_path)
    assert first["promoted"] and reg.live_version() == first["version"]
    man = reg.manifest(first["version"])
    assert man["kind"] == "fraud-model" and man["features"][0] == "amount"
    assert (
        man["features"] == list(FEATURE_NAMES)
        and man["label_delay_days"] == 7.0
        and 0 <= man["thresholds"]["review"] <= man["thresholds"]["decline"] <= 1
    )
    assert "val_pr_auc" in man["metrics"] and man["data_window"]["name"] == "w"
    # the guard registered whichever of the graph and the tabular model ranked validation better
    met = man["metrics"]
    best = max(met["val_pr_auc_graph_model"], met["val_pr_auc_tabular_model"])
    assert man["guard"]["chosen"] == first["guard"] in ("graph", "tabular")
    assert met["val_pr_auc"] == pytest.approx(best)
    booster = XgbModel.load(reg.artifact(first["version"], "xgb.json"))
    assert booster.features == man["features"]
    assert load_gcn(reg).in_channels == 12
    # the configuration passed is the one trained (FAST's 8 hidden channels, not the default)
    assert load_gcn(reg).hidden_channels == FAST.gcn.hidden_channels != GcnConfig().hidden_channels
    # same data again: the candidate does not beat production by the margin -> kept
    strict = _settings(tmp_path, promote_margin=0.5)
    second = train_pipeline(settings=strict, data_dir=small_world, pit=FAST)
    assert not second["promoted"] and reg.live_version() == first["version"]
    assert second["live_val_pr_auc_same_window"] == pytest.approx(first["metrics"]["val_pr_auc"])
    # rollback to any version, then back
    assert reg.promote(second["version"], metric="val_pr_auc", force=True)
    assert reg.rollback() == first["version"] and reg.live_version() == first["version"]


def test_evaluate_writes_report_and_plot(tmp_path: Path, small_world: Path) -> None:
    from gnn.dataset import build_dataset, load_frames
    from gnn.evaluate import evaluate_dataset, write_report

    out = tmp_path / "rep"
    ds = build_dataset(load_frames(small_world), pit=FAST, progress=False)
    write_report(evaluate_dataset(ds, seed=1, cost_fp=100, cost_fn=550), out)
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["metrics"]) == {"a_rules", "b_xgb_tabular", "c_gcn", "d_xgb_graph"}
    for vals in rep["metrics"].values():
        assert 0.0 <= vals["pr_auc"] <= 1.0 and "ring_recall_24h" in vals
    assert rep["split"]["train_end"] < rep["split"]["test_start"]
    rings = rep["extra"]["rings_at_test_end"]  # the small world's planted rings, flagged as served
    assert rings["rings_confirmed"] > 0 and 0.0 <= rings["ring_recall"] <= 1.0
    assert 0.0 <= rings["ring_false_share"] <= 1.0
    assert 0 <= rings["rings_false_on_shape"] <= rings["rings_flagged_on_shape"]
    assert rings["rings_flagged_on_shape"] <= rings["rings_flagged"]
    assert (
        rings["rings_false_on_shape"] <= rings["ring_false_share"] * rings["rings_flagged"] + 1e-9
    )
    assert (out / "pr_curve.png").stat().st_size > 10_000
    md = (out / "report.md").read_text()
    assert "| metric | (a) rules only | (b) XGBoost, tabular features |" in md
    pr_row = next(line for line in md.splitlines() if line.startswith("| PR-AUC |"))
    d_pr = rep["metrics"]["d_xgb_graph"]["pr_auc"]
    assert pr_row.rstrip(" |").endswith(f"{d_pr:.3f}")


def test_evaluate_warns_when_the_windows_hold_too_few_frauds() -> None:
    from gnn.evaluate import MIN_TEST_FRAUDS, MIN_VAL_FRAUDS, thin_evidence

    fine = {"a": {"review": 0.3, "decline": 0.8}, "b": {"review": 1.0, "decline": 1.0}}
    assert (
        thin_evidence(test_frauds=MIN_TEST_FRAUDS, val_known_frauds=MIN_VAL_FRAUDS, thresholds=fine)
        == []
    )
    [test_only] = thin_evidence(test_frauds=3, val_known_frauds=500, thresholds=fine)
    assert "test window has 3 fraudulent" in test_only
    [val_only] = thin_evidence(test_frauds=500, val_known_frauds=2, thresholds=fine)
    assert "validation window has 2 known fraud" in val_only
    flat = {k: {"review": 1.0, "decline": 1.0} for k in "ab"}
    [ones] = thin_evidence(test_frauds=500, val_known_frauds=500, thresholds=flat)
    assert "thresholds are 1.0" in ones


def _evaluate(world: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`fraudring evaluate` as a user runs it, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "fraudring.cli", "evaluate", "--data", str(world),
         "--out", str(out), *extra],
        capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "250"},
    )  # fmt: skip


def test_evaluate_refuses_a_world_too_short_before_building_features(tmp_path: Path) -> None:
    from world.simulate import generate

    world = tmp_path / "short"
    generate(out=world, transactions=800, seed=3, days=12, fraud_rate=0.002, progress=False)
    out = _evaluate(world, tmp_path / "rep")
    assert out.returncode == 2, out.stderr  # bad input
    assert "error: the world spans 12 days: too short" in out.stderr + out.stdout
    assert "snapshots" not in out.stderr and "Traceback" not in out.stderr


def test_evaluate_on_a_tiny_world_says_its_figures_mean_nothing(tmp_path: Path) -> None:
    """A world this small has a handful of frauds in its test window: the CLI says so."""
    from world.simulate import generate

    world = tmp_path / "tiny"
    generate(out=world, transactions=3000, seed=3, days=22, fraud_rate=0.002, progress=False)
    out = _evaluate(world, tmp_path / "rep")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("epoch ") < 10, out.stderr  # a log gets no line per GCN epoch
    assert "warning: the test window has" in out.stdout
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["extra"]["warnings"] and rep["extra"]["test_frauds"] < 30
    assert "**Warning:**" in (tmp_path / "rep" / "report.md").read_text()
    assert "(c)" in out.stdout and "c_gcn" in rep["metrics"]
    base = rep["extra"]["approve_all"]
    assert base["pr_auc"] == pytest.approx(rep["extra"]["test_frauds"] / rep["rows"]["test"])
    assert base["cost_per_1000"] == pytest.approx(550_000 * base["pr_auc"])
    assert "Approving everything: PR-AUC" in " ".join(out.stdout.split())
    assert "Approving everything: PR-AUC" in (tmp_path / "rep" / "report.md").read_text()
    out = _evaluate(world, tmp_path / "rep2", "--no-gcn")
    assert out.returncode == 0, out.stderr
    rep2 = json.loads((tmp_path / "rep2" / "report.json").read_text())
    assert "(c)" not in out.stdout and sorted(rep2["metrics"]) == [
        "a_rules",
        "b_xgb_tabular",
        "d_xgb_graph",
    ]
    for k in ("pr_auc", "roc_auc", "cost_per_1000"):  # the GCN is no input of (d)
        assert rep2["metrics"]["d_xgb_graph"][k] == rep["metrics"]["d_xgb_graph"][k]


def test_report_cells_read_as_numbers() -> None:
    from gnn.evaluate import fmt

    assert fmt("pr_auc", 0.5) == "0.500" and fmt("roc_auc", 1.0) == "1.000"
    assert fmt("cost_per_1000", 4922.4) == "$4,922" and fmt("rings_in_test", 8.0) == "8"
    assert fmt("ring_recall_24h", float("nan")) == "n/a"


def test_bad_data_dir_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fraudring import cli

    monkeypatch.setattr(sys, "argv", ["fraudring", "evaluate", "--data", str(tmp_path / "nope")])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "not a world dir" in err and "Traceback" not in err
    (tmp_path / "transactions.parquet").write_bytes(b"not parquet")
    monkeypatch.setattr(sys, "argv", ["fraudring", "evaluate", "--data", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "not a readable Parquet file" in err and "Traceback" not in err


def test_thresholds_by_expected_cost() -> None:
    # ten transactions at each score
    y = np.repeat([1, 1, 0, 1, 0, 0, 0, 0, 0, 0], 10)
    s = np.repeat([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05], 10)
    thr = choose_thresholds(y, s, cost_fp=100, cost_fn=550)
    # declining >= 0.6 costs ten FPs (1,000) vs missing the ten frauds at 0.6 (5,500)
    assert thr.decline == pytest.approx(0.6)
    assert thr.review == pytest.approx(0.6)  # nothing below 0.6 is worth a $20 review
    cheap = choose_thresholds(
        np.r_[y, np.ones(10)], np.r_[s, np.full(10, 0.01)], cost_fp=100, cost_fn=550
    )
    assert cheap.review < cheap.decline  # frauds at the bottom: reviewing all pays


def test_two_flagged_validation_transactions_do_not_make_a_decline_threshold() -> None:
    """One fraud among the two top scores of 2,000 validation transactions (fraud share 0.5%)
    is no evidence that declining pays; sixty among the top hundred is."""
    rng = np.random.default_rng(0)
    y = np.r_[1, 0, (rng.random(1998) < 0.005).astype(int)]
    s = np.r_[0.99, 0.98, rng.random(1998) * 0.5]
    thin = choose_thresholds(y, s, cost_fp=100, cost_fn=550)
    assert thin.decline == 1.0  # flag nothing
    y2 = np.r_[np.ones(60), np.zeros(40), y[2:]]
    s2 = np.r_[np.full(100, 0.9), s[2:]]
    ample = choose_thresholds(y2, s2, cost_fp=100, cost_fn=550)
    assert ample.decline == pytest.approx(0.9)


def test_settings_are_used_for_costs(make_settings: Callable[..., Settings]) -> None:
    s = make_settings(cost_fp=1.0, cost_fn=1000.0)
    y = np.repeat([1, 0, 0, 0, 1], 5)
    sc = np.repeat([0.9, 0.8, 0.7, 0.6, 0.5], 5)
    thr = choose_thresholds(y, sc, cost_fp=s.cost_fp, cost_fn=s.cost_fn)
    assert thr.decline == pytest.approx(0.5)  # misses are so costly that all are declined


def test_live_model_of_an_older_contract_is_scored_on_its_own_columns(tmp_path: Path) -> None:
    """After the contract grew (STATS_FEATURES), the live model still competes on the same
    validation rows, reading only the columns it knows; one reading an unknown one does not."""
    from gnn.service import _live_val_pr_auc
    from gnn.tabular import fit_xgb

    rng = np.random.default_rng(0)
    names = list(FEATURE_NAMES)
    x = rng.normal(size=(600, len(names)))
    y = (x[:, 0] + 0.5 * rng.normal(size=600) > 1.0).astype(np.int64)
    old = names[:5]  # an older, smaller contract
    model = fit_xgb(x[:, :5], y, None, None, features=old, seed=1)
    reg = ModelRegistry(tmp_path / "models")
    model.save(tmp_path / "xgb.json")
    version = reg.register(artifacts={"xgb.json": tmp_path / "xgb.json"}, manifest={"metrics": {}})
    reg.promote(version, metric="val_pr_auc", force=True)
    ap = _live_val_pr_auc(reg, x, y, names)
    assert ap is not None and ap == pytest.approx(average_precision(y, model.predict(x[:, :5])))
    assert ap > 0.5
    assert _live_val_pr_auc(reg, x[:, 1:], y, names[1:]) is None  # "amount" unknown here


def test_a_hedged_training_is_recorded(tmp_path: Path, small_world: Path) -> None:
    from gnn.service import train_pipeline

    for hedge in ("monotone", "blend"):
        settings = _settings(tmp_path / hedge, train_hedge=hedge)
        result = train_pipeline(settings=settings, data_dir=small_world, pit=FAST, promote=False)
        man = ModelRegistry(settings.models_path).manifest(result["version"])
        assert man["hedge"] == hedge and man["guard"]["chosen"] in ("graph", "tabular")


def test_train_without_the_gcn_registers_the_fraud_model_alone(
    tmp_path: Path,
    small_world: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fraudring import cli

    monkeypatch.setenv("FRAUDRING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    argv = ["fraudring", "train", "--data", str(small_world), "--no-gcn"]
    monkeypatch.setattr(sys, "argv", argv)
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main()
    finally:
        get_settings.cache_clear()
    assert exc.value.code in (0, None), capsys.readouterr().err
    out = capsys.readouterr().out
    assert "promoted" in out and "gcn_val_pr_auc" not in out
    reg = ModelRegistry(tmp_path / "data" / "models")
    live = reg.live_version()
    assert live is not None
    man = reg.manifest(live)
    assert man["gcn"] == {"fits": 0, "trained": False}
    assert (reg.root / live / "xgb.json").is_file() and not (reg.root / live / "gcn.pt").exists()


@given(st.text(max_size=10))
def test_train_hedge_setting_names_its_choices(value: str) -> None:
    if value in ("none", "dropout", "monotone", "blend"):
        assert load_settings(env="dev", train_hedge=value).train_hedge == value
    else:
        with pytest.raises(SettingsError, match="FRAUDRING_TRAIN_HEDGE: Input should be"):
            load_settings(env="dev", train_hedge=value)


def test_evaluate_finds_laundering_cycles_through_the_payees_accounts(tmp_path: Path) -> None:
    """AMLSim transfers name their payee, whom the ring rule ties to the account its payers
    share: four cycles of three are found. A world loaded before payees were named (no such
    column) finds none, and evaluate says why (this was every AMLSim world: 0 of 67)."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from gnn.dataset import build_dataset, load_frames
    from gnn.evaluate import evaluate_dataset
    from gnn.pit import PitConfig
    from gnn.ringtruth import PAYEE_ACCOUNTS, ring_detection, window_warning
    from graph.schemas import RingParams
    from world.amlsim import load_amlsim

    rng = np.random.default_rng(5)
    src = tmp_path / "sample"
    src.mkdir()
    n, bad = 300, list(range(12))  # four cycles of three
    pd.DataFrame(
        {"nodeid": range(n), "isFraud": [int(i in bad) for i in range(n)], "init_balance": 1.0,
         "fraudStep": [1 if i in bad else -1 for i in range(n)]}
    ).to_csv(src / "nodes.csv", index=False)  # fmt: skip
    rows = [(int(s), int(t), 100.0, int(d)) for s, t, d in zip(
        rng.integers(12, n, 3000), rng.integers(12, n, 3000), rng.integers(0, 40, 3000),
        strict=True)]  # fmt: skip
    for c in range(4):
        a, b, d = 3 * c, 3 * c + 1, 3 * c + 2
        rows += [(s, t, 90.0, day) for day in range(c, 40, 3) for s, t in ((a, b), (b, d), (d, a))]
    pd.DataFrame(rows, columns=["sourceNodeId", "targetNodeId", "value", "time"]).to_csv(
        src / "transactions.csv", index=False
    )
    world = tmp_path / "w"
    load_amlsim(src=src, out=world, report_rate=1.0)

    def rings() -> tuple[dict[str, float], list[str]]:
        ds = build_dataset(load_frames(world), pit=PitConfig(use_gcn=False), progress=False)
        report = evaluate_dataset(ds, seed=1, cost_fp=100, cost_fn=550, gcn=False)
        return report.extra["rings_at_test_end"], report.extra["warnings"]

    found, warnings = rings()
    assert found["ring_recall"] == 1.0
    assert found["ring_false_share"] == 0.0
    assert (found["rings_confirmed"], found["rings_dormant"], found["ring_window_days"]) == (
        4,
        0,
        30,
    )
    assert PAYEE_ACCOUNTS not in warnings
    assert not any("FRAUDRING_RING_WINDOW_DAYS" in w for w in warnings)  # cycles span < 30 days
    # A rule that forgets links after a day cannot see cycles idle longer: counted apart.
    ds = build_dataset(load_frames(world), pit=PitConfig(use_gcn=False), progress=False)
    short = ring_detection(ds, at=int(ds.t[-1]) + 1, params=RingParams(window_days=1.5))
    assert short["rings_dormant"] >= 1 and short["rings_confirmed"] + short["rings_dormant"] == 4
    # each live cycle's three transfers fall on one day: the short window holds them whole
    assert short["ring_reach_days_median"] < 1.5 and window_warning(short) is None
    tx = world / "transactions.parquet"
    pq.write_table(pq.read_table(tx).drop_columns(["payee_user_id"]), tx)
    found, warnings = rings()
    assert found["ring_recall"] == 0.0
    assert PAYEE_ACCOUNTS in warnings


@pytest.mark.parametrize(
    ("fraud_days", "message"),
    [((), "holds no fraud label"), ((1, 2, 3), "the validation window")],
)
def test_train_refuses_data_it_cannot_learn_fraud_from(
    tmp_path: Path, fraud_days: tuple[int, ...], message: str
) -> None:
    """No fraud label, or none in the validation window: one line, and no model registered."""
    import numpy as np
    import pandas as pd

    from tests.support.cli import run_cli

    rng = np.random.default_rng(3)
    day = rng.integers(0, 30, 2000)
    pd.DataFrame(
        {
            "user": [f"u{i}" for i in rng.integers(0, 200, 2000)],
            "amount": rng.gamma(2, 40, 2000).round(2),
            "time": [f"2026-01-{d + 1:02d}T12:00:00Z" for d in day],
            "fraud": [int(d in fraud_days and i % 7 == 0) for i, d in enumerate(day)],
        }
    ).to_csv(tmp_path / "p.csv", index=False)
    columns = "user=user,amount=amount,time=time" + (",label=fraud" if fraud_days else "")
    load = run_cli("load", "--input", "p.csv", "--columns", columns, "--out", "w", cwd=tmp_path)
    assert load.returncode == 0, load.stderr
    env = {"FRAUDRING_DATA_DIR": str(tmp_path / "data")}
    run = run_cli("train", "--data", "w", "--no-gcn", cwd=tmp_path, env=env)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: ")
    assert message in run.stderr and "Traceback" not in run.stderr
    assert (
        not (tmp_path / "data" / "models").exists()
        or ModelRegistry(tmp_path / "data" / "models").live_version() is None
    )


def test_train_figures_read_as_numbers() -> None:
    from fraudring.cli.learn import _fmt

    assert _fmt(19_570.3) == "19,570" and _fmt(506.0) == "506" and _fmt(0.058894) == "0.05889"
    assert _fmt(float("nan")) == "nan" and _fmt(None) == "None" and _fmt(3) == "3"


@pytest.mark.parametrize(
    ("median", "p75", "window", "said"),
    [(12.9, 18.1, 30.0, None), (30.0, 40.0, 30.0, None), (86.0, 102.9, 30.0, "=103 "),
     (86.0, 102.9, 120.0, None), (float("nan"), float("nan"), 30.0, None)],
)  # fmt: skip
def test_evaluate_names_a_window_when_rings_reach_back_further(
    median: float, p75: float, window: float, said: str | None
) -> None:
    from gnn.ringtruth import window_warning

    rings = {
        "ring_reach_days_median": median,
        "ring_reach_days_p75": p75,
        "ring_window_days": window,
    }
    warning = window_warning(rings)
    assert (warning is None) == (said is None)
    assert said is None or (warning is not None and f"FRAUDRING_RING_WINDOW_DAYS{said}" in warning)
