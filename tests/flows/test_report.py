"""The run's workbook (flows/report.py, docs/reruns.md "The run folder"): the sheets, amounts as
numbers with their currency's decimals, ids as text, no formula ever, listed in the manifest."""

from __future__ import annotations

import hashlib
import shutil
from decimal import Decimal
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from flows import report
from flows.month import RunOptions, RunOutcome
from flows.records import Manifest
from flows.run import run_month
from tests.flows.corrections import correct_earning

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
FORMULAS = ('=HYPERLINK("http://x","y")', "+1+1", "@SUM(A1)", "-2+3")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunOutcome, RunOutcome]:
    """April of the sample with formula-like text in a market and an earnings id, then a rerun."""
    folder = tmp_path_factory.mktemp("report")
    inputs = folder / "inputs"
    shutil.copytree(SAMPLE, inputs)
    plans = inputs / "plans.csv"
    quoted = '"' + FORMULAS[0].replace('"', '""') + '"'
    plans.write_text(plans.read_text().replace("United States", quoted, 1))
    earnings = inputs / "earnings.csv"
    rows = "".join(
        '"' + text.replace('"', '""') + '",4412907,Azure Co-op,Marketing,2026-04,1.00,usd\n'
        for text in FORMULAS
    )
    earnings.write_text(earnings.read_text() + rows)
    out = folder / "out"
    first = run_month(RunOptions(month="2026-04", input_dir=inputs, output_dir=out))
    correct_earning(inputs)
    second = run_month(RunOptions(month="2026-04", input_dir=inputs, output_dir=out, reason="fix"))
    return first, second


def workbook(outcome: RunOutcome) -> openpyxl.Workbook:
    return openpyxl.load_workbook(outcome.run_dir / "report.xlsx")


def test_the_sheets_of_a_first_run_and_of_a_rerun(runs: tuple[RunOutcome, RunOutcome]) -> None:
    first, second = runs
    assert workbook(first).sheetnames == [
        "Summary",
        "Payouts",
        "Exceptions",
        "Statement",
        "Payments",
    ]
    assert workbook(second).sheetnames[:6] == [
        "Summary",
        "Payouts",
        "Exceptions",
        "Statement",
        "Payments",
        "Changes",
    ]


def test_header_frozen_filter_on_ids_text_amounts_numbers(
    runs: tuple[RunOutcome, RunOutcome],
) -> None:
    sheet = workbook(runs[0])["Payouts"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:")
    header = [cell.value for cell in sheet[1]]
    rows = {row[header.index("plan_id")].value: row for row in sheet.iter_rows(min_row=2)}
    cp1 = rows["CP26-0001"]
    assert cp1[header.index("mpn_id")].data_type == "s"
    payable = cp1[header.index("payable_amount")]
    assert (payable.value, payable.number_format) == (5000, "#,##0.00")
    jpy = next(row for row in rows.values() if row[header.index("currency")].value == "JPY")
    assert jpy[header.index("earned_amount")].number_format == "#,##0"


@pytest.mark.parametrize("name", ["Payouts", "Statement", "Payments"])
def test_an_mpn_id_keeps_its_leading_zeros(runs: tuple[RunOutcome, RunOutcome], name: str) -> None:
    sheet = workbook(runs[0])[name]
    header = [cell.value for cell in sheet[1]]
    cells = [row[header.index("mpn_id")] for row in sheet.iter_rows(min_row=2)]
    assert {cell.data_type for cell in cells} == {"s"}
    assert "00784512" in {cell.value for cell in cells}


def test_every_amount_reads_back_as_its_exact_decimal(runs: tuple[RunOutcome, RunOutcome]) -> None:
    sheet = workbook(runs[0])["Payouts"]
    header = [cell.value for cell in sheet[1]]
    amounts = [name for name in header if name.endswith("_amount")]
    frame = pl.read_parquet(runs[0].run_dir / "payouts.parquet")
    for row, values in zip(sheet.iter_rows(min_row=2), frame.iter_rows(named=True), strict=True):
        for name in amounts:
            cell, expected = row[header.index(name)], values[name]
            if expected is None:
                assert cell.value is None
            else:
                assert cell.data_type == "n"
                assert Decimal(repr(float(cell.value))) == expected


@pytest.mark.parametrize(
    ("amount", "cell"),
    [
        pytest.param("9999999999999.99", 9999999999999.99, id="largest-number"),
        pytest.param("-9999999999999.99", -9999999999999.99, id="largest-negative-number"),
        pytest.param("10000000000000.00", "10000000000000.00", id="text-beyond"),
        pytest.param("-9999999999999999.99", "-9999999999999999.99", id="text-decimal-18-2"),
    ],
)
def test_an_amount_too_large_for_a_number_is_its_exact_text(
    runs: tuple[RunOutcome, RunOutcome], tmp_path: Path, amount: str, cell: object
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(runs[0].run_dir, run_dir)
    payouts = pl.read_parquet(run_dir / "payouts.parquet")
    first = pl.int_range(pl.len()) == 0
    payouts.with_columns(
        pl.when(first)
        .then(pl.lit(Decimal(amount), pl.Decimal(18, 2)))
        .otherwise(pl.col("earned_amount"))
        .alias("earned_amount"),
        pl.when(first).then(pl.lit("USD")).otherwise(pl.col("currency")).alias("currency"),
    ).write_parquet(run_dir / "payouts.parquet")
    manifest = Manifest.read(run_dir / "manifest.json")
    report.write_report(manifest, run_dir, tmp_path / "large.xlsx")
    book = openpyxl.load_workbook(tmp_path / "large.xlsx")
    sheet = book["Payouts"]
    header = [c.value for c in sheet[1]]
    written = sheet.cell(2, header.index("earned_amount") + 1)
    assert written.value == cell and type(written.value) is type(cell)
    summary = [row[0] for row in book["Summary"].iter_rows(values_only=True) if row[0]]
    note = "Payouts: 1 amount(s) beyond 9,999,999,999,999.99 written as their exact text"
    assert any(line.startswith(note) for line in summary) is isinstance(cell, str)


def test_formula_like_text_is_stored_as_text(runs: tuple[RunOutcome, RunOutcome]) -> None:
    book = workbook(runs[0])
    cells = [cell for sheet in book for row in sheet.iter_rows() for cell in row]
    assert not [cell.coordinate for cell in cells if cell.data_type == "f"]
    texts = {cell.value for cell in cells if cell.data_type == "s"}
    assert set(FORMULAS) <= texts


def test_the_summary_holds_the_run_tables_and_the_reconciliation(
    runs: tuple[RunOutcome, RunOutcome],
) -> None:
    sheet = workbook(runs[0])["Summary"]
    values = [[c for c in row if c is not None] for row in sheet.iter_rows(values_only=True)]
    assert ["JPY", "PAY", 3, 1590000, 1590000, 0] in values
    assert ["exceptions by code"] in values and ["payment batch of 2026-05-15"] in values
    assert any(row and str(row[0]).endswith("reconciliation holds") for row in values)


def test_listed_in_the_manifest_with_its_sha256(runs: tuple[RunOutcome, RunOutcome]) -> None:
    for outcome in runs:
        manifest = Manifest.read(outcome.run_dir / "manifest.json")
        data = (outcome.run_dir / "report.xlsx").read_bytes()
        assert manifest.outputs["report.xlsx"].sha256 == hashlib.sha256(data).hexdigest()


def test_a_long_sheet_is_cut_and_the_summary_says_so(
    runs: tuple[RunOutcome, RunOutcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "SHEET_ROWS", 10)
    manifest = Manifest.read(runs[0].run_dir / "manifest.json")
    report.write_report(manifest, runs[0].run_dir, tmp_path / "cut.xlsx")
    book = openpyxl.load_workbook(tmp_path / "cut.xlsx")
    assert book["Payouts"].max_row == 11
    summary = [row[0] for row in book["Summary"].iter_rows(values_only=True) if row[0]]
    rows = manifest.outputs["payouts.parquet"].rows
    assert (
        f"Payouts: the first 10 of {rows} rows; all of them are in payouts.parquet in the run "
        "folder" in summary
    )


def test_a_check_writes_no_workbook(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_month(RunOptions(month="2026-04", input_dir=SAMPLE, output_dir=out, dry_run=True))
    assert not list(out.rglob("report.xlsx"))


@pytest.mark.parametrize("name", ["Payouts", "Statement", "Payments", "Changes", "Owed changes"])
def test_every_amount_column_has_its_currency_format(
    runs: tuple[RunOutcome, RunOutcome], name: str
) -> None:
    """Every decimal column of a run file is an amount in the workbook, whatever its name
    (the Owed changes sheet's `difference` among them)."""
    files = {
        "Payouts": "payouts.parquet",
        "Statement": "statements.parquet",
        "Payments": "payments.csv",
        "Changes": "changes.parquet",
        "Owed changes": "owed_changes.parquet",
    }
    rerun = runs[1]
    frame = report.read(rerun.run_dir / files[name])
    money = [column for column, dtype in frame.schema.items() if isinstance(dtype, pl.Decimal)]
    assert money
    sheet = workbook(rerun)[name]
    header = [cell.value for cell in sheet[1]]
    formats = {
        (column, row[header.index("currency")].value, row[header.index(column)].number_format)
        for row in sheet.iter_rows(min_row=2)
        for column in money
        if row[header.index(column)].value is not None
    }
    assert formats, name
    for column, currency, number_format in formats:
        assert number_format == ("#,##0" if currency == "JPY" else "#,##0.00"), column
