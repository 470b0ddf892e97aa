"""Payments from balances, released in order (docs/payments.md): the minimum carries a balance,
a release appends to the ledger once, a correction after release is recovered from the next
batch, never paid twice."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from flows.errors import Refused, UsageError
from flows.month import RunOptions
from flows.run import run_month
from tests.coop_rules import builders as b
from tests.flows.corrections import correct_earning
from tests.flows.releasing import release


def write_inputs(folder: Path, earnings: list[b.Row]) -> Path:
    return b.write_folder(
        folder,
        {
            "programs": [b.program()],
            "plans": [b.plan()],
            "plan_limits": [b.limit(limit_amount="20000.00")],
            "earnings": earnings,
        },
    )


def statement(outcome) -> dict:
    (row,) = pl.read_parquet(outcome.run_dir / "statements.parquet").iter_rows(named=True)
    return row


def run(inputs: Path, out: Path, month: str, reason: str | None = None):
    return run_month(RunOptions(month=month, input_dir=inputs, output_dir=out, reason=reason))


@pytest.fixture
def months(tmp_path: Path) -> tuple[Path, Path]:
    """USD 150 in February (below the 200 minimum), 100 in March, 300 in April."""
    inputs = write_inputs(
        tmp_path / "in",
        [
            b.earning(earning_id="E-02", earning_month="2026-02", amount="150.00"),
            b.earning(earning_id="E-03", earning_month="2026-03", amount="100.00"),
            b.earning(earning_id="E-04", earning_month="2026-04", amount="300.00"),
        ],
    )
    return inputs, tmp_path / "out"


def test_balance_minimum_release_and_a_correction_recovered(months: tuple[Path, Path]) -> None:
    inputs, out = months
    february = run(inputs, out, "2026-02")
    row = statement(february)
    assert (row["status"], row["owed"], row["carried_amount"]) == (
        "BELOW_MINIMUM",
        Decimal("150.00"),
        Decimal("150.00"),
    )
    assert (february.run_dir / "payments.csv").read_text().count("\n") == 1  # header only
    release(out, "2026-02", "Megan Bowen")
    march = run(inputs, out, "2026-03")
    row = statement(march)
    assert (row["status"], row["brought_forward"], row["order_amount"]) == (
        "PAY",
        Decimal("150.00"),
        Decimal("250.00"),
    )
    assert row["payment_id"] == "20260415-4412907-USD"
    done = release(out, "2026-03", "Megan Bowen")
    assert done.status == "released"
    again = release(out, "2026-03", "Someone Else")
    assert again.status == "already released" and "Megan Bowen" in again.message
    ledger = pl.scan_parquet(out / "ledger").collect()
    assert ledger.get_column("amount").sum() == Decimal("250.00")
    bank = (out / "releases" / "2026-04-15" / "payments.csv").read_bytes()
    assert bank == (march.run_dir / "payments.csv").read_bytes()
    assert (
        json.loads((out / "releases" / "2026-04-15" / "release.json").read_text())["approved_by"]
        == "Megan Bowen"
    )

    # March is corrected down by 100 after its release: no second March batch, no negative.
    correct_earning(inputs, "E-03", "0.00")
    corrected = run(inputs, out, "2026-03", reason="March earning withdrawn")
    assert corrected.manifest.payments.batch == "none"
    assert "goes to the next batch" in corrected.message
    assert pl.read_parquet(corrected.run_dir / "statements.parquet").height == 0
    assert (out / "releases" / "2026-04-15" / "payments.csv").read_bytes() == bank
    # Releasing March again after its correction: its batch was released; nothing changes.
    again = release(out, "2026-03", "Someone Else")
    assert again.status == "already released" and "Megan Bowen" in again.message
    assert "next batch" in again.message

    # April: 300 earned, 100 to recover: 200 paid.
    april = run(inputs, out, "2026-04", reason="March corrected")
    row = statement(april)
    assert (row["status"], row["owed"], row["order_amount"]) == (
        "PAY",
        Decimal("200.00"),
        Decimal("200.00"),
    )
    assert april.manifest.payments.reconciliation.holds


def test_release_refusals(months: tuple[Path, Path]) -> None:
    inputs, out = months
    with pytest.raises(UsageError):
        release(out, "2026-02", "   ")
    run(inputs, out, "2026-02")
    with pytest.raises(Refused, match="not published"):
        release(out, "2026-05", "Megan Bowen")
    run(inputs, out, "2026-03")
    with pytest.raises(Refused, match="batches go out in order"):
        release(out, "2026-03", "Megan Bowen")
    # February republished after March's batch was computed: March's batch is stale.
    correct_earning(inputs, "E-02", "160.00")
    run(inputs, out, "2026-02", reason="February corrected")
    release(out, "2026-02", "Megan Bowen")
    with pytest.raises(Refused, match="stale"):
        release(out, "2026-03", "Megan Bowen")
    # The earnings file changed, so March's rerun needs a reason like any changed input.
    march = run(inputs, out, "2026-03", reason="February corrected")
    assert march.manifest.payments.batch == "proposed"
    assert release(out, "2026-03", "Megan Bowen").status == "released"


def test_an_earlier_month_of_another_period_makes_the_batch_stale_and_a_rerun_fixes_it(
    tmp_path: Path,
) -> None:
    """A batch rests on every earlier published month, whatever its period: a rerun on the
    same files must recompute it (without --reason), not call it unchanged."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    rows = {
        "programs": [b.program(), b.fy25()],
        "plans": [b.plan(), b.plan(plan_id="CP25-0001", period="FY25", created_on="2024-07-15",
                                   first_submitted_on="2024-07-29",
                                   last_submitted_on="2024-08-05")],
        "plan_limits": [b.limit(), b.limit(plan_id="CP25-0001", effective_month="2024-07")],
        "earnings": [
            b.earning(earning_id="E-1", earning_month="2026-04", amount="500.00"),
            b.earning(earning_id="E-2", earning_month="2025-06", amount="700.00"),
        ],
    }  # fmt: skip
    b.write_folder(inputs, rows)
    out = tmp_path / "out"
    run(inputs, out, "2026-04")
    june = run(inputs, out, "2025-06")
    assert "2026-04" in june.manifest.payments.stale_batches
    with pytest.raises(Refused):  # June 2025's batch goes first
        release(out, "2026-04", "Megan Bowen")
    release(out, "2025-06", "Megan Bowen")
    with pytest.raises(Refused, match="stale"):
        release(out, "2026-04", "Megan Bowen")
    rerun = run(inputs, out, "2026-04")
    assert rerun.status == "published"
    assert rerun.manifest.reason == "an earlier month changed"
    assert statement(rerun)["order_amount"] == Decimal("500.00")
    assert release(out, "2026-04", "Megan Bowen").status == "released"


def test_a_batch_made_stale_by_a_month_of_an_earlier_period_is_refreshed_by_a_rerun(
    tmp_path: Path,
) -> None:
    """July (FY26) is run before June (FY25): June's publish makes July's batch stale, though
    July's payouts do not rest on June (another period). Rerunning July must then propose a new
    batch, not say "unchanged", or July could never be released."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    fy25_plan = b.plan(
        plan_id="CP25-0001",
        period="FY25",
        created_on="2024-07-15",
        first_submitted_on="2024-07-29",
        last_submitted_on="2024-08-05",
    )
    datasets = {
        "programs": [b.fy25(), b.program()],
        "plans": [fy25_plan, b.plan()],
        "plan_limits": [b.limit(plan_id="CP25-0001", effective_month="2024-07"), b.limit()],
        "earnings": [
            b.earning(earning_id="E-06", earning_month="2025-06", amount="300.00"),
            b.earning(earning_id="E-07", earning_month="2025-07", amount="300.00"),
        ],
    }
    b.write_folder(inputs, datasets)
    out = tmp_path / "out"
    run(inputs, out, "2025-07")
    run(inputs, out, "2025-06")
    release(out, "2025-06", "Megan Bowen")
    with pytest.raises(Refused, match="stale"):
        release(out, "2025-07", "Megan Bowen")
    july = run(inputs, out, "2025-07")
    assert july.status == "published"
    assert july.manifest.reason == "an earlier month changed"
    # June's 300.00 was paid with June's batch: July's batch pays July's 300.00 only.
    row = statement(july)
    assert (row["status"], row["owed"]) == ("PAY", Decimal("300.00"))
    assert release(out, "2025-07", "Megan Bowen").status == "released"


def test_a_month_published_late_behind_a_release_has_no_batch_to_release(
    months: tuple[Path, Path],
) -> None:
    inputs, out = months
    run(inputs, out, "2026-03")
    release(out, "2026-03", "Megan Bowen")
    february = run(inputs, out, "2026-02")
    assert february.manifest.payments.batch == "none"
    # February's own payment date (2026-03-15) was never released: the sentence names the
    # released batch it is behind.
    with pytest.raises(Refused, match="behind the batch of 2026-04-15, released by Megan Bowen"):
        release(out, "2026-02", "Megan Bowen")


def test_a_fall_after_release_is_recovered_over_two_later_months(tmp_path: Path) -> None:
    """January pays 300.00, then is corrected to 0.00: February's 100.00 does not cover the
    300.00 paid too much (RECOVERING, -200.00 carried, nothing paid); March's 500.00 does."""
    inputs = write_inputs(
        tmp_path / "in",
        [
            b.earning(earning_id="E-01", earning_month="2026-01", amount="300.00"),
            b.earning(earning_id="E-02", earning_month="2026-02", amount="100.00"),
            b.earning(earning_id="E-03", earning_month="2026-03", amount="500.00"),
        ],
    )
    out = tmp_path / "out"
    assert statement(run(inputs, out, "2026-01"))["status"] == "PAY"
    release(out, "2026-01", "Megan Bowen")
    correct_earning(inputs, "E-01", "0.00")
    run(inputs, out, "2026-01", reason="January withdrawn")
    columns = ("status", "brought_forward", "owed", "order_amount", "carried_amount")
    february = statement(run(inputs, out, "2026-02"))
    assert [february[c] for c in columns] == [
        "RECOVERING",
        Decimal("-300.00"),
        Decimal("-200.00"),
        Decimal("0.00"),
        Decimal("-200.00"),
    ]
    assert release(out, "2026-02", "Megan Bowen").status == "released"
    ledger = pl.read_parquet(out / "ledger" / "payment_date=2026-03-15")
    assert ledger.height == 0  # nothing paid: no ledger row
    march = statement(run(inputs, out, "2026-03"))
    assert [march[c] for c in columns] == [
        "PAY",
        Decimal("-200.00"),
        Decimal("300.00"),
        Decimal("300.00"),
        Decimal("0.00"),
    ]
    release(out, "2026-03", "Megan Bowen")
    ledger = pl.scan_parquet(out / "ledger").collect()
    # 300.00 paid for January and 300.00 in March: the 600.00 now payable, paid once.
    assert ledger.get_column("amount").sum() == Decimal("600.00")
