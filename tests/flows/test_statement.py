"""One partner's statement (docs/operations.md, "A partner's question"): per payment date the
batch, the status, the figures, what the ledger paid, and who released it."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from flows import cli
from flows.folder import OutputFolder
from flows.month import RunOptions
from flows.run import run_month
from flows.statement import partner_statement
from tests.flows import payment_inputs
from tests.flows.releasing import release

USD, JPY = payment_inputs.ACCOUNTS[0], payment_inputs.ACCOUNTS[1]
AMOUNTS = {
    ("USD", "2026-01"): "150.00",
    ("USD", "2026-02"): "250.00",
    ("JPY", "2026-01"): "40000",
}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """January run and released (USD below the minimum, JPY paid), February run (proposed)."""
    folder = tmp_path_factory.mktemp("statement")
    inputs = payment_inputs.write_inputs(folder / "in", AMOUNTS)
    out = folder / "out"
    run_month(RunOptions(month="2026-01", input_dir=inputs, output_dir=out))
    release(out, "2026-01", "Megan Bowen")
    run_month(RunOptions(month="2026-02", input_dir=inputs, output_dir=out))
    return out


def test_each_payment_date_with_its_figures_and_release(out: Path) -> None:
    lines = partner_statement(OutputFolder(out), USD.mpn_id)
    rows = [
        {key: line.row[key] for key in ("payment_date", "batch", "status", "owed", "paid")}
        | {"carried": line.row["carried"], "by": line.row["released_by"]}
        for line in lines
    ]
    assert rows == [
        {
            "payment_date": "2026-02-15",
            "batch": "released",
            "status": "BELOW_MINIMUM",
            "owed": Decimal("150.00"),
            "paid": Decimal("0.00"),
            "carried": Decimal("150.00"),
            "by": "Megan Bowen",
        },
        {
            "payment_date": "2026-03-15",
            "batch": "proposed",
            "status": "PAY",
            "owed": Decimal("400.00"),
            "paid": None,
            "carried": Decimal("0.00"),
            "by": None,
        },
    ]
    assert lines[1].row["brought_forward"] == Decimal("150.00")


def test_paid_is_the_ledger_and_jpy_shows_no_minor_digits(out: Path) -> None:
    result = CliRunner().invoke(
        cli.app, ["statement", "--mpn-id", JPY.mpn_id, "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("| 2026-02-15")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:5] == ["2026-02-15", "JPY", "2026-01", "released", "PAY"]
    assert cells[7:9] == ["40000", "40000"]  # owed, paid: as the bank file says it


def test_currency_filter_plans_and_json(out: Path) -> None:
    runner = CliRunner()
    none = runner.invoke(
        cli.app, ["statement", "--mpn-id", USD.mpn_id, "--currency", "JPY", "--output", str(out)]
    )
    assert none.exit_code == 0 and f"no statement rows for {USD.mpn_id} JPY" in none.stdout
    shown = runner.invoke(
        cli.app, ["statement", "--mpn-id", USD.mpn_id, "--output", str(out), "--json", "--plans"]
    )
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert [row["owed"] for row in rows] == ["150.00", "400.00"]
    assert [plan["plan_id"] for plan in rows[1]["plans"]] == [USD.plan_id]
    assert rows[1]["plans"][0]["payable_amount"] == "250.00"
    # Yen as the bank file writes it: no minor digits.
    yen = runner.invoke(
        cli.app, ["statement", "--mpn-id", JPY.mpn_id, "--output", str(out), "--json", "--plans"]
    )
    (line,) = json.loads(yen.stdout)
    assert (line["owed"], line["paid"], line["plans"][0]["earned_amount"]) == (
        "40000",
        "40000",
        "40000",
    )


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--mpn-id", "12AB"], "--mpn-id"),
        (["--mpn-id", "4412907", "--currency", "usd"], "--currency"),
    ],
    ids=["mpn-id-not-digits", "currency-lowercase"],
)
def test_bad_options_are_usage_errors(out: Path, args: list[str], phrase: str) -> None:
    result = CliRunner().invoke(cli.app, ["statement", *args, "--output", str(out)])
    assert result.exit_code == 2 and phrase in result.stderr


def test_the_ledger_is_read_through_the_release_chain(tmp_path: Path) -> None:
    inputs = payment_inputs.write_inputs(tmp_path / "in", AMOUNTS)
    out = tmp_path / "out"
    run_month(RunOptions(month="2026-01", input_dir=inputs, output_dir=out))
    release(out, "2026-01", "Megan Bowen")
    (out / "ledger" / "payment_date=2026-02-15" / "part-0.parquet").unlink()
    result = CliRunner().invoke(
        cli.app, ["statement", "--mpn-id", JPY.mpn_id, "--output", str(out)]
    )
    assert result.exit_code == 1 and "part-0.parquet is missing" in result.stderr


def test_every_value_whole_at_80_columns(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    monkeypatch.setattr(cli, "out", console)
    result = CliRunner().invoke(
        cli.app, ["statement", "--mpn-id", USD.mpn_id, "--output", str(out), "--plans"]
    )
    assert result.exit_code == 0, result.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", console.file.getvalue())
    assert "…" not in text and "BELOW_MINIMUM" in text and "400.00" in text
    assert all(len(line) <= 80 for line in text.splitlines())


def test_a_rerun_after_release_keeps_what_was_paid_and_shows_the_stale_batch(
    tmp_path: Path,
) -> None:
    inputs = payment_inputs.write_inputs(tmp_path / "in", AMOUNTS)
    out = tmp_path / "out"
    january = run_month(RunOptions(month="2026-01", input_dir=inputs, output_dir=out))
    release(out, "2026-01", "Megan Bowen")
    run_month(RunOptions(month="2026-02", input_dir=inputs, output_dir=out))
    payment_inputs.write_earnings(inputs, {**AMOUNTS, ("USD", "2026-01"): "120.00"})
    run_month(
        RunOptions(month="2026-01", input_dir=inputs, output_dir=out, reason="January corrected")
    )
    lines = partner_statement(OutputFolder(out), USD.mpn_id)
    shown = [
        (line.row["payment_date"], line.row["batch"], line.row["run_id"], line.row["owed"])
        for line in lines
    ]
    assert shown[0] == ("2026-02-15", "released", january.run_id, Decimal("150.00"))
    assert shown[1][:2] == ("2026-03-15", "stale")


def test_a_forfeit_is_what_the_ledger_forfeited_on_its_payment_date(tmp_path: Path) -> None:
    """The held partner (payment_inputs: `Action required` since 2025-09-20, hold ends
    2026-03-19): January's 300.00 is held in the batches of 2026-02-15 and 2026-03-15, then
    forfeited whole with March's 200.00 in the batch of 2026-04-15 (docs/payments.md)."""
    held = payment_inputs.ACCOUNTS[2]
    amounts = {("HELD", "2026-01"): "300.00", ("HELD", "2026-03"): "200.00"}
    inputs = payment_inputs.write_inputs(tmp_path / "in", amounts)
    out = tmp_path / "out"
    for month in ("2026-01", "2026-02", "2026-03"):
        run_month(RunOptions(month=month, input_dir=inputs, output_dir=out, allow_empty=True))
        release(out, month, "Megan Bowen")
    lines = partner_statement(OutputFolder(out), held.mpn_id)
    shown = [
        tuple(line.row[key] for key in ("payment_date", "status", "owed", "paid", "forfeited"))
        + (line.row["carried"],)
        for line in lines
    ]
    zero = Decimal("0.00")
    assert shown == [
        ("2026-02-15", "HELD_PROFILE", Decimal("300.00"), zero, zero, Decimal("300.00")),
        ("2026-03-15", "HELD_PROFILE", Decimal("300.00"), zero, zero, Decimal("300.00")),
        ("2026-04-15", "FORFEITED", Decimal("500.00"), zero, Decimal("500.00"), zero),
    ]
