"""Golden tests of the sample's payments: the batches of February to April released in order,
and a correction of March after its release, recovered from April's batch.

The expected values live next to this file, derived by hand in data/sample/CASES.md (section 8),
not by this code: expected_sample_statements.csv (the statement rows of each batch) and
expected_sample_payments.csv (each batch's payments.csv, as text). A batch is named by its
earning month; `2026-04-corrected` is April's batch recomputed after March's correction.
Runs go through `flows.run.run_month` and releases through `flows.release.release_month`,
without Prefect.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from coop_rules.vocabulary import PaymentStatus
from flows.errors import Refused
from flows.month import RunOptions, RunOutcome
from flows.release import Released
from flows.run import run_month
from tests.flows import releasing

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "data"
SAMPLE = DATA / "sample"
CORRECTED = DATA / "sample-corrected"
MONTHS = ("2026-02", "2026-03", "2026-04")
BATCHES = (*MONTHS, "2026-04-corrected")
PAY_DATES = {"2026-02": "2026-03-15", "2026-03": "2026-04-15", "2026-04": "2026-05-15"}
APPROVER = "Megan Bowen"
AMOUNTS = (
    "payable_this_month",
    "brought_forward",
    "owed",
    "order_amount",
    "forfeit_amount",
    "carried_amount",
)
# The March earnings rows data/sample-corrected changes: earning_id -> (sample, corrected).
CORRECTED_ROWS = {
    "ERN-2603-0005": ("1712.00", "0.00"),
    "ERN-2603-0011": ("1587.75", "72.25"),
    "ERN-2603-0028": ("1755.00", "1255.00"),
}


def expected(name: str, batch: str) -> list[dict[str, str]]:
    with (HERE / name).open(encoding="utf-8", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row.pop("batch") == batch]


def run(month: str, inputs: Path, out: Path, reason: str | None = None) -> RunOutcome:
    outcome = run_month(RunOptions(month=month, input_dir=inputs, output_dir=out, reason=reason))
    assert outcome.status == "published"
    return outcome


def release(out: Path, month: str) -> Released:
    done = releasing.release(out, month, APPROVER)
    assert done.status == "released"
    return done


@dataclass(frozen=True)
class Sequence:
    """An output folder after a sequence of runs and releases, and what each step returned."""

    out: Path
    runs: dict[str, RunOutcome]
    releases: dict[str, Released]
    stale_refusal: str = ""


@pytest.fixture(scope="module")
def corrected(tmp_path_factory: pytest.TempPathFactory) -> Sequence:
    """The README's sequence: backfill February to April, release February and March, rerun
    March on the corrected folder (no batch: March is released), April's batch is then stale
    and refused, rerun April on the corrected folder, release April."""
    out = tmp_path_factory.mktemp("corrected") / "out"
    runs = {month: run(month, SAMPLE, out) for month in MONTHS}
    releases = {month: release(out, month) for month in MONTHS[:2]}
    runs["2026-03-corrected"] = run(
        "2026-03", CORRECTED, out, reason="March earnings of 1357924 and 4490127 corrected"
    )
    with pytest.raises(Refused) as refused:
        releasing.release(out, "2026-04", APPROVER)
    runs["2026-04-corrected"] = run("2026-04", CORRECTED, out, reason="rerun after March")
    releases["2026-04"] = release(out, "2026-04")
    return Sequence(out, runs, releases, str(refused.value))


@pytest.fixture(scope="module")
def monthly(tmp_path_factory: pytest.TempPathFactory) -> Sequence:
    """The monthly routine: each month run, then released, before the next is run."""
    out = tmp_path_factory.mktemp("monthly") / "out"
    runs, releases = {}, {}
    for month in MONTHS:
        runs[month] = run(month, SAMPLE, out)
        releases[month] = release(out, month)
    return Sequence(out, runs, releases)


def statement_rows(outcome: RunOutcome) -> list[dict]:
    assert outcome.run_dir is not None
    return pl.read_parquet(outcome.run_dir / "statements.parquet").to_dicts()


def payments_text(outcome: RunOutcome) -> list[dict[str, str]]:
    assert outcome.run_dir is not None
    with (outcome.run_dir / "payments.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def assert_statements(outcome: RunOutcome, batch: str) -> None:
    month = batch[:7]
    got = statement_rows(outcome)
    for row in got:
        assert (row["run_id"], row["earning_month"], row["payment_date"].isoformat()) == (
            outcome.run_id,
            month,
            PAY_DATES[month],
        )
    assert [
        {
            "mpn_id": r["mpn_id"],
            "currency": r["currency"],
            **{name: r[name] for name in AMOUNTS},
            "status": r["status"],
            "payment_id": r["payment_id"],
        }
        for r in sorted(got, key=lambda r: (r["mpn_id"], r["currency"]))
    ] == [
        {
            "mpn_id": w["mpn_id"],
            "currency": w["currency"],
            **{name: Decimal(w[name]) for name in AMOUNTS},
            "status": w["status"],
            "payment_id": w["payment_id"] or None,
        }
        for w in expected("expected_sample_statements.csv", batch)
    ]


# --- Statements and bank files of every batch ---------------------------------------------------


@pytest.mark.parametrize("batch", BATCHES)
def test_statements_match_cases(corrected: Sequence, batch: str) -> None:
    assert_statements(corrected.runs[batch], batch)


@pytest.mark.parametrize("batch", BATCHES)
def test_payments_csv_matches_cases(corrected: Sequence, batch: str) -> None:
    """Byte-level text: JPY without decimals, the others with two; plan_count 1 for an account
    paid a balance brought forward with this month's payable."""
    assert payments_text(corrected.runs[batch]) == expected("expected_sample_payments.csv", batch)


@pytest.mark.parametrize("month", MONTHS)
def test_released_month_by_month_gives_the_same_batches(monthly: Sequence, month: str) -> None:
    """Releasing each batch before the next month is run, or backfilling first and releasing
    after, proposes the same batches."""
    assert_statements(monthly.runs[month], month)
    assert payments_text(monthly.runs[month]) == expected("expected_sample_payments.csv", month)


def test_every_status_appears(corrected: Sequence) -> None:
    seen = {row["status"] for batch in BATCHES for row in statement_rows(corrected.runs[batch])}
    assert seen == {status.value for status in PaymentStatus}


# --- Releases, the ledger and the correction -------------------------------------------------


def test_each_release_writes_the_bank_file_and_the_ledger(corrected: Sequence) -> None:
    out = corrected.out
    released_runs = {
        "2026-02": corrected.runs["2026-02"],
        "2026-03": corrected.runs["2026-03"],
        "2026-04": corrected.runs["2026-04-corrected"],
    }
    ledger = pl.scan_parquet(out / "ledger").collect()
    for month, outcome in released_runs.items():
        assert outcome.run_dir is not None
        folder = out / "releases" / PAY_DATES[month]
        bank_file = (folder / "payments.csv").read_bytes()
        assert bank_file == (outcome.run_dir / "payments.csv").read_bytes()
        record = json.loads((folder / "release.json").read_text(encoding="utf-8"))
        assert (record["run_id"], record["approved_by"]) == (outcome.run_id, APPROVER)
        assert corrected.releases[month].payment_date == PAY_DATES[month]
        rows = ledger.filter(pl.col("run_id") == outcome.run_id)
        statements = [r for r in statement_rows(outcome) if r["status"] in ("PAY", "FORFEITED")]
        assert sorted(rows.select("mpn_id", "currency", "kind", "amount").rows()) == sorted(
            (
                r["mpn_id"],
                r["currency"],
                "PAYMENT" if r["status"] == "PAY" else "FORFEIT",
                r["order_amount"] + r["forfeit_amount"],
            )
            for r in statements
        )
    # March's batch forfeits 3402716's whole balance (February's 900.00 held, March's 700.00).
    forfeits = ledger.filter(pl.col("kind") == "FORFEIT")
    assert forfeits.select("mpn_id", "currency", "amount", "payment_id").rows() == [
        ("3402716", "EUR", Decimal("1600.00"), None)
    ]
    payment_ids = ledger.get_column("payment_id").drop_nulls()
    assert payment_ids.n_unique() == payment_ids.len()


def test_a_correction_after_release_proposes_no_batch(corrected: Sequence) -> None:
    rerun = corrected.runs["2026-03-corrected"]
    assert rerun.manifest is not None and rerun.run_dir is not None
    assert rerun.manifest.payments.batch == "none"
    assert {
        d.currency: Decimal(d.difference) for d in rerun.manifest.payments.difference_to_next_batch
    } == {
        "EUR": Decimal("0.00"),
        "GBP": Decimal("-2015.50"),
        "JPY": Decimal("0.00"),
        "USD": Decimal("-1712.00"),
    }
    assert "goes to the next batch" in rerun.message and "2026-04" in rerun.message
    assert statement_rows(rerun) == []
    assert payments_text(rerun) == []
    # The released batch of 2026-04-15 and its published statement stay March's first run's.
    first = corrected.runs["2026-03"]
    assert first.run_dir is not None
    published = pl.read_parquet(corrected.out / "statements" / "payment_date=2026-04-15")
    assert sorted(published.get_column("run_id").unique()) == [first.run_id]
    assert published.height == len(statement_rows(first))
    assert (corrected.out / "releases" / "2026-04-15" / "payments.csv").read_bytes() == (
        first.run_dir / "payments.csv"
    ).read_bytes()


def test_the_stale_april_batch_is_refused(corrected: Sequence) -> None:
    assert "stale" in corrected.stale_refusal
    assert "rerun 2026-04" in corrected.stale_refusal


def test_money_is_conserved_after_the_correction(corrected: Sequence) -> None:
    """Per currency: payable of the published months = released + forfeited + carried in the
    latest batch (April's corrected batch is released: nothing proposed is left)."""
    out = corrected.out
    payable = (
        pl.scan_parquet(out / "payouts")
        .group_by("currency")
        .agg(pl.col("payable_amount").sum())
        .collect()
    )
    ledger = pl.scan_parquet(out / "ledger").group_by("currency").agg(pl.col("amount").sum())
    carried: dict[str, Decimal] = defaultdict(Decimal)
    for row in statement_rows(corrected.runs["2026-04-corrected"]):
        carried[row["currency"]] += row["carried_amount"]
    released = dict(ledger.collect().rows())
    for currency, total in payable.rows():
        assert total == released.get(currency, Decimal(0)) + carried[currency], currency


def test_the_corrected_folder_differs_from_the_sample_only_in_three_march_rows() -> None:
    files = sorted(p.name for p in SAMPLE.glob("*.csv"))
    assert files == sorted(p.name for p in CORRECTED.glob("*.csv"))
    for name in files:
        before = (SAMPLE / name).read_text(encoding="utf-8").splitlines()
        after = (CORRECTED / name).read_text(encoding="utf-8").splitlines()
        if name != "earnings.csv":
            assert before == after, name
            continue
        changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
        assert {
            b.split(",")[0]: (b.split(",")[5], a.split(",")[5]) for b, a in changed
        } == CORRECTED_ROWS
