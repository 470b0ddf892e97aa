"""Every statement status at once, end to end (docs/payments.md, "The statement and its
statuses"): one batch where a payment profiles file, a release and a correction after it give
each account a different status."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from flows.month import RunOptions
from flows.run import run_month
from tests.coop_rules import builders as b
from tests.flows.payment_inputs import write_csv
from tests.flows.releasing import release

# account -> (mpn_id, currency, January amount, January corrected, February amount)
ACCOUNTS = {
    "pay": ("1000001", "USD", "0.00", "0.00", "250.00"),
    "pay-jpy": ("1000002", "JPY", "0", "0", "150000"),
    "below-minimum": ("1000003", "USD", "0.00", "0.00", "50.00"),
    "held-action-required": ("1000004", "USD", "0.00", "0.00", "300.00"),
    "held-not-in-profiles": ("1000005", "USD", "0.00", "0.00", "300.00"),
    "forfeited": ("1000006", "USD", "0.00", "0.00", "300.00"),
    # Paid 300.00 in January, which a correction after its release lowers to 0.00 / 200.00.
    "recovering": ("1000007", "USD", "300.00", "0.00", "100.00"),
    "nothing-due": ("1000008", "USD", "300.00", "200.00", "100.00"),
}
PROFILES = [
    b.payment_profile(mpn_id=mpn)
    for key, (mpn, *_) in ACCOUNTS.items()
    if key not in ("held-action-required", "held-not-in-profiles", "forfeited")
] + [
    # Within hold_days (180) of 2026-03-15, February's payment date.
    b.payment_profile(
        mpn_id="1000004", profile_status="Action required", action_required_since="2026-01-05"
    ),
    # Past hold_days: the hold ended 2025-11-28.
    b.payment_profile(
        mpn_id="1000006", profile_status="Action required", action_required_since="2025-06-01"
    ),
]
# status, brought_forward, owed, order_amount, forfeit_amount, carried_amount
EXPECTED = {
    "pay": ("PAY", "0.00", "250.00", "250.00", "0.00", "0.00"),
    "pay-jpy": ("PAY", "0.00", "150000.00", "150000.00", "0.00", "0.00"),
    "below-minimum": ("BELOW_MINIMUM", "0.00", "50.00", "0.00", "0.00", "50.00"),
    "held-action-required": ("HELD_PROFILE", "0.00", "300.00", "0.00", "0.00", "300.00"),
    "held-not-in-profiles": ("HELD_PROFILE", "0.00", "300.00", "0.00", "0.00", "300.00"),
    "forfeited": ("FORFEITED", "0.00", "300.00", "0.00", "300.00", "0.00"),
    "recovering": ("RECOVERING", "-300.00", "-200.00", "0.00", "0.00", "-200.00"),
    "nothing-due": ("NOTHING_DUE", "-100.00", "0.00", "0.00", "0.00", "0.00"),
}


def write_inputs(folder: Path, january: int) -> None:
    """The inputs with the January amounts (2: as corrected) and the February ones."""
    folder.mkdir(parents=True, exist_ok=True)
    plans, limits, earnings = [], [], []
    for n, (key, (mpn, currency, *amounts)) in enumerate(ACCOUNTS.items(), start=1):
        plan_id = f"CP26-{n:04d}"
        plans.append(b.plan(plan_id=plan_id, mpn_id=mpn, currency=currency))
        limits.append(b.limit(plan_id=plan_id, limit_amount="1000000"))
        for month, amount in (("2026-01", amounts[january]), ("2026-02", amounts[2])):
            earnings.append(
                b.earning(
                    earning_id=f"E-{key}-{month}",
                    mpn_id=mpn,
                    earning_month=month,
                    amount=amount,
                    currency=currency,
                )
            )
    write_csv(folder / "programs.csv", [b.program()])
    write_csv(folder / "plans.csv", plans)
    write_csv(folder / "plan_limits.csv", limits)
    write_csv(folder / "earnings.csv", earnings)
    write_csv(folder / "payment_profiles.csv", PROFILES)


@pytest.fixture(scope="module")
def february(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """January run and released, then corrected; February's run folder and output folder."""
    root = tmp_path_factory.mktemp("statuses")
    inputs, out = root / "in", root / "out"
    write_inputs(inputs, january=0)
    run_month(RunOptions(month="2026-01", input_dir=inputs, output_dir=out))
    release(out, "2026-01", "Megan Bowen")
    write_inputs(inputs, january=1)
    corrected = run_month(
        RunOptions(month="2026-01", input_dir=inputs, output_dir=out, reason="January corrected")
    )
    assert corrected.manifest.payments.batch == "none"
    outcome = run_month(RunOptions(month="2026-02", input_dir=inputs, output_dir=out))
    return outcome.run_dir, out


@pytest.mark.parametrize("account", list(EXPECTED))
def test_statement_row_of_each_status(account: str, february: tuple[Path, Path]) -> None:
    run_dir, out = february
    mpn, currency, *_ = ACCOUNTS[account]
    for statements in (
        pl.read_parquet(run_dir / "statements.parquet"),
        pl.read_parquet(out / "statements" / "payment_date=2026-03-15" / "part-0.parquet"),
    ):
        rows = statements.filter(pl.col("mpn_id") == mpn, pl.col("currency") == currency)
        (row,) = rows.iter_rows(named=True)
        status, *amounts = EXPECTED[account]
        columns = ("brought_forward", "owed", "order_amount", "forfeit_amount", "carried_amount")
        assert row["status"] == status
        assert [row[c] for c in columns] == [Decimal(a) for a in amounts]
        assert row["payable_this_month"] == Decimal(ACCOUNTS[account][4])
        expected_id = f"20260315-{mpn}-{currency}" if status == "PAY" else None
        assert row["payment_id"] == expected_id


def test_bank_file_has_the_pay_rows_only(february: tuple[Path, Path]) -> None:
    run_dir, _ = february
    assert (run_dir / "payments.csv").read_text().splitlines() == [
        "payment_id,mpn_id,currency,payment_date,amount,plan_count",
        "20260315-1000001-USD,1000001,USD,2026-03-15,250.00,1",
        "20260315-1000002-JPY,1000002,JPY,2026-03-15,150000,1",
    ]
    statements = pl.read_parquet(run_dir / "statements.parquet")
    assert statements.height == len(EXPECTED)
