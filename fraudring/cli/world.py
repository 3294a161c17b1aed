"""`fraudring simulate` (synthetic world with planted rings) and `fraudring load` (real data)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fraudring.cli.tables import compact
from fraudring.errors import InvalidInput

if TYPE_CHECKING:
    from world.summary import WorldSummary

console = Console()
HANDBOOK_DEFAULT = Path("../shared/datasets/fraud-detection-handbook/transactions.parquet")


def print_summary(s: WorldSummary, *, title: str) -> None:
    counts = Table(title=title)
    counts.add_column("figure")
    counts.add_column("value", justify="right")
    for name, value in [
        ("transactions", f"{s.transactions:,}"),
        ("fraudulent transactions", f"{s.fraud_transactions:,}"),
        ("fraud rate", f"{s.fraud_rate:.3%}"),
        ("labels (all)", f"{s.labels:,}"),
        ("chargebacks (fraud labels)", f"{s.fraud_labels:,}"),
        ("users", f"{s.users:,}"),
        ("cards", f"{s.cards:,}"),
        ("devices", f"{s.devices:,}"),
        ("IPs", f"{s.ips:,}"),
        ("merchants", f"{s.merchants:,}"),
    ]:
        counts.add_row(name, value)
    if s.seconds:
        counts.add_row("seconds", f"{s.seconds:.1f}")
        counts.add_row("transactions / s", f"{s.transactions / s.seconds:,.0f}")
    console.print(counts)
    if not s.rings:
        return
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in s.rings:
        by[str(r["typology"])].append(r)
    rings = compact(
        "planted rings by typology",
        caption="users: members of all its rings; sizes: min/median/max members; fraud: "
        "fraudulent transactions; dev, IP, card, merch: the rings' own entities",
    )
    for col in ("typology", "rings", "users", "sizes", "fraud", "dev", "IP", "card", "merch"):
        rings.add_column(col, justify="left" if col == "typology" else "right", no_wrap=True)
    for typ in sorted(by):
        rs = by[typ]
        sizes = sorted(int(r["size"]) for r in rs)
        rings.add_row(
            typ,
            str(len(rs)),
            f"{sum(sizes):,}",
            f"{sizes[0]}/{sizes[len(sizes) // 2]}/{sizes[-1]}",
            f"{sum(int(r['fraud_txns']) for r in rs):,}",
            *(f"{sum(int(r[k]) for r in rs):,}" for k in ("devices", "ips", "cards", "merchants")),
        )
    # Piped output is 80 columns wide for rich, whatever reads it: give it room.
    (console if console.is_terminal else Console(width=110)).print(rings)


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(
        out: Annotated[Path, typer.Option(help="World directory to write.")],
        transactions: Annotated[int, typer.Option(help="Number of transactions.")] = 100_000,
        seed: Annotated[int, typer.Option(help="Seed: the same seed gives identical files.")] = 7,
        difficulty: Annotated[
            str, typer.Option(help="hard: rings only visible in the graph; easy: also per txn.")
        ] = "hard",
        days: Annotated[int, typer.Option(help="Length of the period in days.")] = 30,
        fraud_rate: Annotated[
            float, typer.Option(help="Share of fraudulent transactions.")
        ] = 0.002,
        topology: Annotated[
            str,
            typer.Option(
                help="Ring shape: dense (each typology's own), chain, star, bipartite, mule, or "
                "mix; any but dense adds the legitimate look-alikes (world.topology)."
            ),
        ] = "dense",
        false_label_rate: Annotated[
            float, typer.Option(help="Share of legitimate transactions labelled fraud anyway.")
        ] = 0.0,
        label_delay_days: Annotated[
            float, typer.Option(help="Minimum days before a chargeback arrives.")
        ] = 7.0,
        label_spread_days: Annotated[
            float, typer.Option(help="Mean extra days (exponential) on top of the minimum.")
        ] = 3.0,
        shift: Annotated[
            bool,
            typer.Option(
                help="Regime change in the last 7 days: a fraud burst at merchants without "
                "fraud history, and new devices everywhere (world.shift)."
            ),
        ] = False,
        summary: Annotated[bool, typer.Option(help="Print counts and rings by typology.")] = False,
        picture: Annotated[
            Path | None, typer.Option(help="Save a PNG of one ring per typology.")
        ] = None,
        progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    ) -> None:
        """Generate a synthetic world of transactions with planted fraud rings (Parquet)."""
        from world.simulate import generate

        s = generate(
            out=out,
            transactions=transactions,
            seed=seed,
            difficulty=difficulty,
            days=days,
            fraud_rate=fraud_rate,
            label_delay_days=label_delay_days,
            label_spread_days=label_spread_days,
            topology=topology,
            false_label_rate=false_label_rate,
            shift=shift,
            progress=progress,
        )
        console.print(
            f"wrote {s.transactions:,} transactions ({s.fraud_transactions:,} fraudulent, "
            f"{len(s.rings)} rings) to {out} in {s.seconds:.1f} s"
        )
        if summary:
            print_summary(s, title=f"world {out} (seed {seed}, {difficulty})")
        if picture is not None:
            from world.picture import draw_rings

            drawn = draw_rings(out, picture)
            console.print(f"picture of {', '.join(drawn)} saved to {picture}")

    @app.command()
    def load(
        out: Annotated[Path, typer.Option(help="World directory to write.")],
        input: Annotated[
            Path | None, typer.Option("--input", help="CSV or Parquet file (or the handbook file).")
        ] = None,
        columns: Annotated[
            str | None,
            typer.Option(
                help="Mapping field=COLUMN, comma-separated. Fields: user, card, device, ip, "
                "merchant, payee (a transfer's receiving account: the merchant when none is "
                "mapped), amount, time, label, label_time, txn, currency, category, ring (a "
                "confirmed ring per row, for evaluate; blank or -1: none); user, amount and "
                "time required. A repeated column name reads as NAME.1, NAME.2; A+B+... reads "
                "several columns as one (ids joined by ':', time=Year+Month+Day+Time as a "
                "date-time)."
            ),
        ] = None,
        handbook: Annotated[
            bool,
            typer.Option(
                help="Load the fraud-detection-handbook benchmark (--input defaults to "
                f"{HANDBOOK_DEFAULT})."
            ),
        ] = False,
        label_delay_days: Annotated[
            float,
            typer.Option(help="Days from a transaction until its label is known (no label_time)."),
        ] = 7.0,
        amlsim: Annotated[
            Path | None,
            typer.Option(help="Load an AMLSim sample folder (nodes.csv, transactions.csv)."),
        ] = None,
        summary: Annotated[bool, typer.Option(help="Print the figures of the result.")] = True,
        assume_tz: Annotated[
            str | None,
            typer.Option(
                help="Time zone (e.g. UTC, Europe/Paris) of times written without one; "
                "without it such rows are refused."
            ),
        ] = None,
        currency: Annotated[
            str, typer.Option(help="Currency of rows without one (announced).")
        ] = "USD",
        time_unit: Annotated[
            str,
            typer.Option(help="Unit of numeric times: s, ms, min, h or d (PaySim's step: h)."),
        ] = "s",
        time_origin: Annotated[
            str | None,
            typer.Option(
                help="Instant a numeric time counts from (ISO 8601, e.g. "
                "2026-01-01T00:00:00Z); without it, the Unix epoch."
            ),
        ] = None,
        tokenize_cards: Annotated[
            bool,
            typer.Option(
                help="Replace card numbers in the card column by a keyed hash "
                "(FRAUDRING_CARD_TOKEN_KEY); without it a file holding one is refused."
            ),
        ] = False,
        tokenize_fields: Annotated[
            str,
            typer.Option(
                help="Id fields besides card and user whose card-number-like values "
                "--tokenize-cards replaces too, comma-separated (TabFormer: merchant)."
            ),
        ] = "",
    ) -> None:
        """Turn real data (CSV/Parquet, the handbook or an AMLSim sample) into a world directory.

        Rows are checked by the same contract as the API's requests (ids, card numbers, IP
        addresses, the amount cap, time bounds and zones, currencies)."""
        from world.io import read_meta
        from world.summary import WorldSummary

        if amlsim is not None:
            from world.amlsim import load_amlsim

            counts = load_amlsim(src=amlsim, out=out, label_delay_days=label_delay_days)
            console.print(
                f"loaded {counts['transactions']:,} transfers ({counts['rings']} laundering "
                f"patterns) into {out}"
            )
            return
        if handbook:
            from world.handbook import load_handbook

            src = input or HANDBOOK_DEFAULT
            report = load_handbook(src=src, out=out, label_delay_days=label_delay_days)
        else:
            if input is None or columns is None:
                raise InvalidInput("load needs --input FILE and --columns (or --handbook)")
            from fraudring.settings import get_settings
            from world.loaders import load_table, parse_columns
            from world.rowcheck import TOKENIZED, Rules, parse_origin

            settings = get_settings()
            key = settings.card_token_key
            if tokenize_fields and not tokenize_cards:
                raise InvalidInput("--tokenize-fields needs --tokenize-cards")
            if tokenize_cards and key is None:
                raise InvalidInput(
                    "--tokenize-cards needs FRAUDRING_CARD_TOKEN_KEY (a secret of 32+ characters)"
                )
            rules = Rules(
                amount_cap=settings.amount_cap,
                max_future_skew_s=settings.max_future_skew_s,
                min_ts=settings.earliest_txn_time.timestamp(),
                assume_tz=assume_tz,
                currency=currency,
                card_key=key.get_secret_value().encode() if tokenize_cards and key else None,
                tokenized=tuple(
                    dict.fromkeys(
                        [*TOKENIZED, *(f.strip() for f in tokenize_fields.split(",") if f.strip())]
                    )
                ),
                time_unit=time_unit,
                time_origin=0.0 if time_origin is None else parse_origin(time_origin, assume_tz),
            )
            report = load_table(
                src=input,
                out=out,
                columns=parse_columns(columns),
                label_delay_days=label_delay_days,
                rules=rules,
            )
        console.print(
            f"loaded {report.loaded:,} rows into {out}; rejected {report.rejected:,} malformed rows"
            + (f" (listed with row numbers in {report.rejected_file})" if report.rejected else "")
        )
        for reason, n in sorted(report.reasons.items()):
            console.print(f"  rejected: {n:,} × {reason}", markup=False)
        for name, what in sorted(report.defaults.items()):
            console.print(f"  assumed {name}: {what}", markup=False)
        if not report.loaded:
            raise InvalidInput("no row passed the checks (reasons above): nothing was loaded")
        if summary:
            print_summary(WorldSummary.from_meta(out, read_meta(out)), title=f"world {out}")
