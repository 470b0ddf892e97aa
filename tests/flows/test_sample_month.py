"""Golden tests of the sample month: the published outputs against data/sample/CASES.md.

The expected values live next to this file, copied from CASES.md (made from the written rules,
docs/, not by this code): expected_2026_04_payouts.csv (section 1),
expected_2026_04_exceptions.csv (3.1 and 3.2), expected_2026_04_payments.csv (4),
expected_2026_04_reconciliation.csv (5), expected_backfill.csv and
expected_backfill_exceptions.csv (2). The `message` of each expected exception is the sentence a
person reads, pinned word for word (CASES.md leaves it to the code). Runs go through
`flows.run.run_month`, the plain sequence of stages, without Prefect.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from flows.month import RunOptions, RunOutcome
from flows.run import run_month

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "data" / "sample"
MONTHS = ("2026-02", "2026-03", "2026-04")
BASES = ("cumulative", "monthly")
PAY_DAY = date(2026, 5, 15)
AMOUNTS = (
    "earned_amount",
    "limit_amount",
    "paid_before_amount",
    "payable_amount",
    "unpaid_amount",
)
# Routing codes: CASES.md leaves their `column` (and so `value`) to the implementation.
ROUTING_CODES = {
    "NO_PROGRAM_PERIOD",
    "NO_PLAN",
    "DUPLICATE_PLAN",
    "PLAN_INVALID",
    "CURRENCY_MISMATCH",
}


def expected(name: str) -> list[dict[str, str]]:
    with (HERE / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def dec(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def rules_file(folder: Path, basis: str) -> Path | None:
    """None for the shipped rules (cumulative); a copy with `cap_basis = "monthly"` otherwise."""
    if basis == "cumulative":
        return None
    text = files("coop_rules").joinpath("rules.toml").read_text(encoding="utf-8")
    assert 'cap_basis = "cumulative"' in text
    path = folder / "monthly.toml"
    path.write_text(text.replace('cap_basis = "cumulative"', 'cap_basis = "monthly"'))
    return path


def run(month: str, out: Path, rules: Path | None) -> RunOutcome:
    outcome = run_month(RunOptions(month=month, input_dir=SAMPLE, output_dir=out, rules_path=rules))
    assert outcome.status == "published"
    return outcome


def published(out: Path, dataset: str, month: str) -> pl.DataFrame:
    frame = pl.scan_parquet(out / dataset).filter(pl.col("earning_month") == month).collect()
    assert frame.height, f"nothing published in {dataset} for {month}"
    return frame


def payments_csv(outcome: RunOutcome) -> list[dict[str, str]]:
    assert outcome.run_dir is not None
    with (outcome.run_dir / "payments.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module", params=BASES)
def april(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """April 2026 run alone on an empty output folder, under each cap basis."""
    folder = tmp_path_factory.mktemp(f"april-{request.param}")
    out = folder / "out"
    return run("2026-04", out, rules_file(folder, request.param)), out


@pytest.fixture(scope="module", params=BASES)
def backfill(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """2026-02, 2026-03, 2026-04 in order into one output folder, under each cap basis."""
    folder = tmp_path_factory.mktemp(f"backfill-{request.param}")
    out = folder / "out"
    rules = rules_file(folder, request.param)
    outcomes = {month: run(month, out, rules) for month in MONTHS}
    return request.param, outcomes, out


# --- April alone ------------------------------------------------------------------------------


def assert_payouts(frame: pl.DataFrame, rows: list[dict[str, str]]) -> None:
    """The payout rows of a month against expected rows (the CASES.md columns)."""
    got = {row["plan_id"]: row for row in frame.iter_rows(named=True)}
    assert sorted(got) == sorted(row["plan_id"] for row in rows)
    for want in rows:
        row = got[want["plan_id"]]
        assert {
            "mpn_id": row["mpn_id"],
            "currency": row["currency"],
            "status": row["status"],
            "earnings_count": row["earnings_count"],
            "earned_amount": row["earned_amount"],
            "limit_amount": row["limit_amount"],
            "payable_amount": row["payable_amount"],
            "unpaid_amount": row["unpaid_amount"],
            "outcome": row["outcome"],
            "reason": row["reason"],
        } == {
            "mpn_id": want["mpn_id"],
            "currency": want["currency"],
            "status": want["status"],
            "earnings_count": len(want["earning_ids"].split(";")),
            "earned_amount": dec(want["earned_amount"]),
            "limit_amount": dec(want["limit_amount"]),
            "payable_amount": dec(want["payable_amount"]),
            "unpaid_amount": dec(want["unpaid_amount"]),
            "outcome": want["outcome"],
            "reason": want["reason"] or None,
        }, want["plan_id"]


def test_april_payouts_match_cases(april: tuple[RunOutcome, Path]) -> None:
    outcome, out = april
    payouts = published(out, "payouts", "2026-04")
    assert payouts.height == 38
    assert_payouts(payouts, expected("expected_2026_04_payouts.csv"))
    assert set(payouts.get_column("payment_date")) == {PAY_DAY}
    assert set(payouts.get_column("run_id")) == {outcome.run_id}
    # Run alone on an empty folder: nothing was paid before.
    assert set(payouts.get_column("paid_before_amount")) == {Decimal("0.00")}


def _same_problem(row: dict, want: dict[str, str]) -> bool:
    """The same file, row and code; and the same column and raw value, except for routing
    codes of earnings rows, whose column CASES.md leaves to the implementation."""
    if (row["source"], row["row_number"], row["code"]) != (
        want["source"],
        int(want["row_number"]),
        want["code"],
    ):
        return False
    if want["source"] == "earnings" and want["code"] in ROUTING_CODES:
        return True
    return (row["column"], row["value"]) == (want["column"] or None, want["value"] or None)


def test_april_exceptions_match_cases(april: tuple[RunOutcome, Path]) -> None:
    _, out = april
    got = published(out, "exceptions", "2026-04")
    want = expected("expected_2026_04_exceptions.csv")
    key = ("source", "row_number", "code")
    assert Counter(
        (r["source"], r["row_number"], r["code"]) for r in got.select(key).iter_rows(named=True)
    ) == Counter((w["source"], int(w["row_number"]), w["code"]) for w in want)
    # One row of exceptions per problem: match each expected row to a published one.
    remaining = list(got.iter_rows(named=True))
    for w in want:
        candidates = [r for r in remaining if _same_problem(r, w)]
        assert candidates, f"no published exception like {w}"
        # Of the rows of the same problem, the one with the expected sentence, word for word.
        row = next((r for r in candidates if r["message"] == w["message"]), candidates[0])
        remaining.remove(row)
        if w["record_key"]:  # programs rows have no id column in CASES.md
            assert row["record_key"] == w["record_key"], w
        assert (row["amount"], row["currency"]) == (dec(w["amount"]), w["currency"] or None), w
        assert row["message"] == w["message"], w
    assert remaining == []


def test_april_payments_csv_matches_cases(april: tuple[RunOutcome, Path]) -> None:
    outcome, _ = april
    got = payments_csv(outcome)
    want = expected("expected_2026_04_payments.csv")
    assert list(got[0]) == [
        "payment_id",
        "mpn_id",
        "currency",
        "payment_date",
        "amount",
        "plan_count",
    ]
    # Every April account of the sample is owed more than its currency's minimum: all PAY.
    for r in got:
        assert (
            r["payment_id"] == f"{r['payment_date'].replace('-', '')}-{r['mpn_id']}-{r['currency']}"
        )
        assert ("." in r["amount"]) == (r["currency"] != "JPY")
    normal = [
        (r["mpn_id"], r["currency"], r["payment_date"], Decimal(r["amount"]), int(r["plan_count"]))
        for r in got
    ]
    assert sorted(normal) == sorted(
        (w["mpn_id"], w["currency"], w["payment_date"], Decimal(w["amount"]), int(w["plan_count"]))
        for w in want
    )
    # Plain decimal text, and no cell a spreadsheet would read as a formula.
    assert all(r["amount"].replace(".", "", 1).isdigit() for r in got)
    assert not any(cell[:1] in "=+-@" for r in got for cell in r.values() if cell)


def test_april_reconciliation_matches_cases(april: tuple[RunOutcome, Path]) -> None:
    outcome, _ = april
    recon = outcome.manifest.reconciliation
    assert recon.holds
    assert (recon.in_scope_rows, recon.routed_rows, recon.exception_rows) == (85, 63, 22)
    figures = {
        c.currency: (
            Decimal(c.input_amount),
            Decimal(c.earned_amount),
            Decimal(c.exception_amount),
        )
        for c in recon.per_currency
    }
    want = expected("expected_2026_04_reconciliation.csv")
    assert figures == {
        w["currency"]: (
            Decimal(w["input_amount"]),
            Decimal(w["earned_amount"]),
            Decimal(w["exception_amount"]),
        )
        for w in want
    }
    per_currency = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for total in outcome.manifest.totals:
        per_currency[total.currency][0] += Decimal(total.payable_amount)
        per_currency[total.currency][1] += Decimal(total.unpaid_amount)
    assert {c: tuple(v) for c, v in per_currency.items()} == {
        w["currency"]: (Decimal(w["payable_amount"]), Decimal(w["unpaid_amount"])) for w in want
    }


# --- Backfill February to April into one folder ------------------------------------------------


def test_backfill_paid_before_and_cap_match_cases(backfill) -> None:
    basis, _, out = backfill
    rows = [r for r in expected("expected_backfill.csv") if r["cap_basis"] == basis]
    assert rows
    for want in rows:
        payouts = published(out, "payouts", want["earning_month"])
        got = payouts.filter(pl.col("plan_id") == want["plan_id"]).row(0, named=True)
        assert (
            tuple(got[name] for name in AMOUNTS),
            got["reason"],
        ) == (
            tuple(dec(want[name]) for name in AMOUNTS),
            want["reason"] or None,
        ), (want["plan_id"], want["earning_month"])


def test_backfill_april_changes_only_cp26_0003_under_cumulative(backfill) -> None:
    basis, _, out = backfill
    want = {r["plan_id"]: dict(r) for r in expected("expected_2026_04_payouts.csv")}
    if basis == "cumulative":
        want["CP26-0003"] |= {
            "payable_amount": "3000.00",
            "unpaid_amount": "3000.00",
            "reason": "CAPPED",
        }
    assert_payouts(published(out, "payouts", "2026-04"), list(want.values()))


def test_backfill_paid_before_is_filled_for_every_plan_paid_earlier(backfill) -> None:
    _, _, out = backfill
    earlier: dict[str, Decimal] = defaultdict(Decimal)
    for month in MONTHS[:2]:
        for row in published(out, "payouts", month).iter_rows(named=True):
            earlier[row["plan_id"]] += row["payable_amount"]
    april = published(out, "payouts", "2026-04")
    for row in april.iter_rows(named=True):
        assert row["paid_before_amount"] == earlier.get(row["plan_id"], Decimal("0.00")), row
    # Not vacuous: 20 of April's plans were paid in February or March, under either basis.
    assert april.filter(pl.col("paid_before_amount") > 0).height == 20


def test_backfill_payments_and_earlier_exceptions(backfill) -> None:
    basis, outcomes, out = backfill
    want = {
        (w["mpn_id"], w["currency"]): Decimal(w["amount"])
        for w in expected("expected_2026_04_payments.csv")
    }
    if basis == "cumulative":
        want[("6610235", "EUR")] = Decimal("3000.00")
    got = {
        (r["mpn_id"], r["currency"]): Decimal(r["amount"])
        for r in payments_csv(outcomes["2026-04"])
    }
    assert got == want
    for month in MONTHS[:2]:
        earnings = published(out, "exceptions", month).filter(pl.col("source") == "earnings")
        assert sorted(
            earnings.select("row_number", "record_key", "code", "amount", "currency").rows()
        ) == [
            (int(w["row_number"]), w["record_key"], w["code"], Decimal(w["amount"]), w["currency"])
            for w in expected("expected_backfill_exceptions.csv")
            if w["earning_month"] == month
        ]
        assert outcomes[month].manifest.reconciliation.holds
    manifest = outcomes["2026-04"].manifest
    assert manifest.paid_before_basis == {
        "2026-02": outcomes["2026-02"].run_id,
        "2026-03": outcomes["2026-03"].run_id,
    }


# --- Readers: polars, pyarrow and DuckDB see the same rows and types -------------------------

SORT_KEYS = {
    "payouts": ("earning_month", "plan_id"),
    "exceptions": ("earning_month", "source", "row_number", "code", "column"),
}
DECIMAL_COLUMNS = {"payouts": AMOUNTS, "exceptions": ("amount",)}


def _sort_key(keys: tuple[str, ...]):
    return lambda row: tuple((row[k] is None, row[k] or "") for k in keys)


@pytest.mark.parametrize("dataset", ["payouts", "exceptions"])
def test_three_readers_agree(backfill, dataset: str) -> None:
    _, _, out = backfill
    folder = out / dataset

    by_polars = pl.scan_parquet(folder).collect()
    columns = by_polars.columns
    assert "earning_month" in columns
    by_arrow = ds.dataset(folder, partitioning="hive", format="parquet").to_table()
    connection = duckdb.connect()
    relation = connection.sql(
        f"SELECT * FROM read_parquet('{folder.as_posix()}/**/*.parquet', hive_partitioning = true)"
    )

    # Exact decimal types for the amount columns, through every reader.
    for name in DECIMAL_COLUMNS[dataset]:
        assert by_polars.schema[name] == pl.Decimal(18, 2), name
        assert by_arrow.schema.field(name).type == pa.decimal128(18, 2), name
        duck_type = dict(zip(relation.columns, relation.types, strict=True))[name]
        assert str(duck_type) == "DECIMAL(18,2)", name

    assert set(by_arrow.column_names) == set(columns)
    assert set(relation.columns) == set(columns)
    key = _sort_key(SORT_KEYS[dataset])
    rows_polars = sorted(by_polars.to_dicts(), key=key)
    rows_arrow = sorted(by_arrow.to_pylist(), key=key)
    duck_rows = relation.fetchall()
    rows_duck = sorted((dict(zip(relation.columns, r, strict=True)) for r in duck_rows), key=key)

    assert len(rows_polars) == len(rows_arrow) == len(rows_duck)
    assert {r["earning_month"] for r in rows_polars} == set(MONTHS)
    for mine, arrows, ducks in zip(rows_polars, rows_arrow, rows_duck, strict=True):
        assert {k: arrows[k] for k in columns} == mine
        assert {k: str(ducks[k]) if k == "earning_month" else ducks[k] for k in columns} == mine
    if dataset == "payouts":
        assert all(isinstance(r["payable_amount"], Decimal) for r in rows_duck)


# --- The manifest -----------------------------------------------------------------------------


def test_manifest_totals_match_the_published_payouts(backfill) -> None:
    _, outcomes, out = backfill
    for month, outcome in outcomes.items():
        assert outcome.run_dir is not None
        manifest = json.loads((outcome.run_dir / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["run_id"] == outcome.run_id
        assert manifest["earning_month"] == month
        assert manifest["reconciliation"]["holds"]
        assert manifest["reconciliation"]["payout_rows_unbalanced"] == 0
        sums: dict[tuple[str, str], list] = defaultdict(
            lambda: [0, 0, Decimal(0), Decimal(0), Decimal(0)]
        )
        for row in published(out, "payouts", month).iter_rows(named=True):
            entry = sums[(row["currency"], row["outcome"])]
            entry[0] += 1
            entry[1] += row["earnings_count"]
            entry[2] += row["earned_amount"]
            entry[3] += row["payable_amount"]
            entry[4] += row["unpaid_amount"]
            assert row["earned_amount"] == row["payable_amount"] + row["unpaid_amount"]
        assert {
            (t["currency"], t["outcome"]): [
                t["plans"],
                t["earnings_rows"],
                Decimal(t["earned_amount"]),
                Decimal(t["payable_amount"]),
                Decimal(t["unpaid_amount"]),
            ]
            for t in manifest["totals"]
        } == dict(sums), month
        routed = sum(t["earnings_rows"] for t in manifest["totals"])
        assert routed == manifest["reconciliation"]["routed_rows"]
        assert manifest["outputs"]["payouts.parquet"]["rows"] == sum(v[0] for v in sums.values())
