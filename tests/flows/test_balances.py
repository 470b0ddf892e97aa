"""Account balances across months (docs/payments.md): a balance beyond Decimal(18, 2) stops the
run naming its account, and a correction that moves money between accounts names each account
whose `owed` changes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows import orchestration, prefect_server
from flows.cli import app
from flows.errors import RunError
from flows.run import RunOptions, RunOutcome, run_month
from tests.coop_rules import builders as b

# Close to the largest Decimal(18, 2) amount (9999999999999999.99): two of them do not fit.
NEAR_MAX = "9000000000000000.00"


@pytest.fixture(autouse=True)
def no_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs here go through `run_month` and `check`: Prefect is never needed."""

    def reached(*args: object, **kwargs: object) -> None:
        raise AssertionError("Prefect was reached")

    monkeypatch.setattr(prefect_server, "start_temporary_server", reached)
    monkeypatch.setattr(orchestration, "monthly_payout", reached)


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
    assert "unexpected error" not in result.stderr
    assert "4412907 USD" in result.stderr and "nothing was published" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


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
    assert february.manifest.payments["reconciliation"]["holds"]
