"""Account balances across months (docs/payments.md): a balance beyond Decimal(18, 2) stops the
run naming its account, and a correction that moves money between accounts names each account
whose `owed` changes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from coop_rules import payments
from coop_rules.money import MONEY
from flows.cli import app
from flows.errors import RunError
from flows.manifest import summary_sentences, summary_tables
from flows.month import RunOptions, RunOutcome
from flows.orchestration import summary_markdown
from flows.run import run_month
from flows.stages.propose import owed_change_record
from tests.coop_rules import builders as b
from tests.flows.releasing import release

# Close to the largest Decimal(18, 2) amount (9999999999999999.99): two of them do not fit.
NEAR_MAX = "9000000000000000.00"


pytestmark = pytest.mark.usefixtures("no_prefect")


def run(inputs: Path, out: Path, month: str, reason: str | None = None) -> RunOutcome:
    return run_month(RunOptions(month=month, input_dir=inputs, output_dir=out, reason=reason))


def statement(outcome: RunOutcome) -> list[dict]:
    assert outcome.run_dir is not None
    return pl.read_parquet(outcome.run_dir / "statements.parquet").to_dicts()


def big_inputs(folder: Path, *, held: bool) -> Path:
    """Partner 4412907 with two USD plans (two funds), each paying NEAR_MAX: plan CP26-0001 in
    January, CP26-0002 in February. `held`: the partner's profile needs action (since
    2026-01-10, within the hold), so January's balance is carried into February's batch."""
    profile = (
        b.payment_profile(profile_status="Action required", action_required_since="2026-01-10")
        if held
        else b.payment_profile()
    )
    return b.write_folder(
        folder,
        {
            "programs": [b.program()],
            "plans": [b.plan(), b.plan(plan_id="CP26-0002", fund="Sales")],
            "plan_limits": [
                b.limit(limit_amount=NEAR_MAX),
                b.limit(plan_id="CP26-0002", limit_amount=NEAR_MAX),
            ],
            "earnings": [
                b.earning(earning_id="E-01", earning_month="2026-01", amount=NEAR_MAX),
                b.earning(
                    earning_id="E-02", earning_month="2026-02", amount=NEAR_MAX, fund="Sales"
                ),
            ],
            "payment_profiles": [profile],
        },
    )


# --- Balances that do not fit ------------------------------------------------------------------


def test_a_balance_beyond_decimal_18_2_stops_the_run_naming_the_account(tmp_path: Path) -> None:
    inputs, out = big_inputs(tmp_path / "in", held=True), tmp_path / "out"
    january = run(inputs, out, "2026-01")
    assert [(r["status"], r["carried_amount"]) for r in statement(january)] == [
        ("HELD_PROFILE", Decimal(NEAR_MAX))
    ]
    with pytest.raises(RunError) as stopped:
        run(inputs, out, "2026-02")
    sentence = str(stopped.value)
    assert stopped.value.exit_code == 1
    assert "4412907 USD" in sentence and "nothing was published" in sentence
    assert "18000000000000000.00" in sentence  # the exact balance, never rounded
    assert sorted(p.name for p in (out / "runs").iterdir()) == [january.run_id]


def test_the_cli_says_which_balance_does_not_fit_never_unexpected_error(tmp_path: Path) -> None:
    inputs, out = big_inputs(tmp_path / "in", held=True), tmp_path / "out"
    run(inputs, out, "2026-01")
    result = CliRunner().invoke(
        app, ["check", "--month", "2026-02", "--input", str(inputs), "--output", str(out)]
    )
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "coop-payouts: the balance of account 4412907 USD in the batch of 2026-02 (paid "
        "2026-03-15) does not fit Decimal(18, 2), 16 digits before the point: owed "
        "18000000000000000.00; nothing was published\n"
    )


def test_sums_beyond_decimal_18_2_are_fine_when_every_balance_fits(tmp_path: Path) -> None:
    """January's NEAR_MAX is ordered by January's proposed batch: February's balance is
    February's NEAR_MAX alone, though the payable of both months together does not fit."""
    inputs, out = big_inputs(tmp_path / "in", held=False), tmp_path / "out"
    run(inputs, out, "2026-01")
    february = run(inputs, out, "2026-02")
    assert [(r["status"], r["brought_forward"], r["owed"]) for r in statement(february)] == [
        ("PAY", Decimal("0.00"), Decimal(NEAR_MAX))
    ]
    assert february.manifest is not None
    assert february.manifest.payments.reconciliation.holds


# --- Corrections that move money between accounts ---------------------------------------------

PARTNER_A, PARTNER_B = b.MPN, "1093384"
MOVED = "6780.25"


def moved_inputs(folder: Path, april: str = "300.00") -> Path:
    """Plan CP26-0001 of partner A (4412907) earns 6780.25 in March and `april` in April; both
    partners are enrolled."""
    return b.write_folder(
        folder,
        {
            "programs": [b.program()],
            "plans": [b.plan()],
            "plan_limits": [b.limit(limit_amount="20000.00")],
            "earnings": [
                b.earning(earning_id="E-03", earning_month="2026-03", amount=MOVED),
                b.earning(earning_id="E-04", earning_month="2026-04", amount=april),
            ],
            "payment_profiles": [
                b.payment_profile(mpn_id=PARTNER_A),
                b.payment_profile(mpn_id=PARTNER_B),
            ],
        },
    )


def move_plan_to_b(inputs: Path) -> None:
    """The plan, and its earnings with it, belong to partner B after all."""
    for name in ("plans.csv", "earnings.csv"):
        frame = pl.read_csv(inputs / name, infer_schema=False)
        frame.with_columns(pl.lit(PARTNER_B).alias("mpn_id")).write_csv(inputs / name)


def owed_changes(outcome: RunOutcome) -> dict[tuple[str, str], tuple[Decimal, ...]]:
    """(mpn_id, currency) -> (before, after, difference), from the run's owed_changes.parquet."""
    assert outcome.run_dir is not None
    frame = pl.read_parquet(outcome.run_dir / "owed_changes.parquet")
    return {
        (row["mpn_id"], row["currency"]): (row["before"], row["after"], row["difference"])
        for row in frame.iter_rows(named=True)
    }


def shown_rows(outcome: RunOutcome) -> list[tuple[str, ...]]:
    assert outcome.manifest is not None
    (table,) = [t for t in summary_tables(outcome.manifest) if t.title.startswith("accounts")]
    assert table.columns == ("account", "currency", "before", "after", "difference")
    return table.rows


def test_a_plan_moved_after_release_names_both_accounts(tmp_path: Path) -> None:
    inputs, out = moved_inputs(tmp_path / "in"), tmp_path / "out"
    march = run(inputs, out, "2026-03")
    assert [(r["mpn_id"], r["order_amount"]) for r in statement(march)] == [
        (PARTNER_A, Decimal(MOVED))
    ]
    release(out, "2026-03", "Megan Bowen")
    move_plan_to_b(inputs)
    rerun = run(inputs, out, "2026-03", reason="plan CP26-0001 belongs to partner 1093384")
    assert rerun.manifest is not None
    assert rerun.manifest.payments.batch == "none"
    # The total per currency does not move: only the accounts show the correction.
    assert [d.model_dump() for d in rerun.manifest.payments.difference_to_next_batch] == [
        {"currency": "USD", "difference": "0.00"}
    ]
    assert owed_changes(rerun) == {
        (PARTNER_A, "USD"): (Decimal(MOVED), Decimal("0.00"), Decimal("-" + MOVED)),
        (PARTNER_B, "USD"): (Decimal("0.00"), Decimal(MOVED), Decimal(MOVED)),
    }
    record = rerun.manifest.payments.owed_changes
    assert (record.basis, record.accounts) == ("next batch", 2)
    assert sorted(shown_rows(rerun)) == [
        (PARTNER_B, "USD", "0.00", MOVED, "+" + MOVED),
        (PARTNER_A, "USD", MOVED, "0.00", "-" + MOVED),
    ]
    # The Prefect summary artifact shows the same table.
    markdown = summary_markdown(rerun)
    assert f"| {PARTNER_A} | USD | {MOVED} | 0.00 | -{MOVED} |" in markdown
    assert f"| {PARTNER_B} | USD | 0.00 | {MOVED} | +{MOVED} |" in markdown
    # April's batch takes the difference: A recovers what it was paid, B is paid it.
    april = run(inputs, out, "2026-04")
    assert {(r["mpn_id"], r["status"], r["owed"]) for r in statement(april)} == {
        (PARTNER_A, "RECOVERING", Decimal("-" + MOVED)),
        (PARTNER_B, "PAY", Decimal("7080.25")),
    }


def test_a_rerun_that_proposes_a_batch_names_the_accounts_whose_owed_changes(
    tmp_path: Path,
) -> None:
    inputs, out = moved_inputs(tmp_path / "in"), tmp_path / "out"
    run(inputs, out, "2026-03")
    release(out, "2026-03", "Megan Bowen")
    april = run(inputs, out, "2026-04")
    move_plan_to_b(inputs)
    run(inputs, out, "2026-03", reason="plan CP26-0001 belongs to partner 1093384")
    rerun = run(inputs, out, "2026-04", reason="plan CP26-0001 belongs to partner 1093384")
    assert rerun.manifest is not None and rerun.manifest.payments.batch == "proposed"
    record = rerun.manifest.payments.owed_changes
    assert (record.basis, record.compared_with) == ("statement", april.run_id)
    assert owed_changes(rerun) == {
        (PARTNER_A, "USD"): (Decimal("300.00"), Decimal("-" + MOVED), Decimal("-7080.25")),
        (PARTNER_B, "USD"): (Decimal("0.00"), Decimal("7080.25"), Decimal("7080.25")),
    }
    # Equal differences: by account.
    assert [row[0] for row in shown_rows(rerun)] == [PARTNER_B, PARTNER_A]


def test_check_prints_the_accounts_a_correction_moves_money_between(tmp_path: Path) -> None:
    inputs, out = moved_inputs(tmp_path / "in"), tmp_path / "out"
    run(inputs, out, "2026-03")
    release(out, "2026-03", "Megan Bowen")
    move_plan_to_b(inputs)
    result = CliRunner().invoke(
        app, ["check", "--month", "2026-03", "--input", str(inputs), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(PARTNER_A in line and "-6780.25" in line for line in lines), result.stdout
    assert any(PARTNER_B in line and "+6780.25" in line for line in lines), result.stdout


def test_the_summary_shows_the_20_largest_changes_and_counts_the_rest(tmp_path: Path) -> None:
    inputs, out = moved_inputs(tmp_path / "in"), tmp_path / "out"
    run(inputs, out, "2026-03")
    release(out, "2026-03", "Megan Bowen")
    move_plan_to_b(inputs)
    rerun = run(inputs, out, "2026-03", reason="moved")
    assert rerun.manifest is not None
    # 25 accounts: account n's owed moves by n (a rise for odd n, a fall for even n).
    accounts = [f"{1000000 + n}" for n in range(25)]
    owed = {"mpn_id": pl.String, "currency": pl.String, "owed": MONEY}
    before = pl.DataFrame(
        {"mpn_id": accounts, "currency": ["USD"] * 25, "owed": [Decimal(0)] * 25}, schema=owed
    )
    after = before.with_columns(
        pl.Series("owed", [Decimal(n if n % 2 else -n) for n in range(25)], MONEY)
    )
    many = payments.owed_changes(before, after, "owed")
    assert many.height == 24  # account 1000000's owed does not change
    figures = rerun.manifest.payments.model_copy(
        update={"owed_changes": owed_change_record(many, basis="next batch", compared_with="R")}
    )
    manifest = rerun.manifest.model_copy(update={"payments": figures})
    (table,) = [t for t in summary_tables(manifest) if t.title.startswith("accounts")]
    assert [row[0] for row in table.rows] == [f"{1000000 + n}" for n in range(24, 4, -1)]
    assert any(
        "4 more account(s)" in line and "owed_changes.parquet" in line
        for line in summary_sentences(manifest)
    )
