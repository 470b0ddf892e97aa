"""The run's workbook, `runs/<run_id>/report.xlsx` (docs/reruns.md, "The run folder"): what
finance opens to review a month and its batch before releasing it.

Sheets: Summary (the run's tables as the command prints them: totals per currency and outcome,
exceptions by file and code, the batch per currency and status, the accounts whose owed changes,
and the reconciliation), then Payouts, Exceptions, Statement, Payments and, for a rerun, Changes.
Amounts are numbers shown with their currency's decimals; ids, codes and free text are text
cells, never formulas, whatever they start with. Each sheet has its header frozen and a filter.

The Parquet files are the record; the workbook is for reading. A sheet holds at most
`SHEET_ROWS` rows (writing a cell costs about 6 microseconds: a month of a million plans would
take a minute; 5,000 rows of five sheets, about 2 s), and the Summary says which sheets were cut
and which file holds all their rows. An amount a spreadsheet's number cannot hold exactly is
written as its text, and the Summary counts them.

The cells are written with xlsxwriter itself, not through polars' `DataFrame.write_excel`: an
amount's format follows its own row's currency, an amount may have to be text in a column of
numbers, and `write_excel` makes an Excel table, which xlsxwriter's constant-memory mode does
not allow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from flows.manifest import currency_digits, summary_sentences, summary_tables
from flows.records import Manifest

# Far below a sheet's limit (1,048,576 rows): the cost bounds it (docs/performance.md).
SHEET_ROWS = 5_000
# A double holds 15 significant digits exactly: larger amounts are written as text, exact.
LARGEST_NUMBER = Decimal("9999999999999.99")
SHEETS = (
    ("Payouts", "payouts.parquet"),
    ("Exceptions", "exceptions.parquet"),
    ("Statement", "statements.parquet"),
    ("Payments", "payments.csv"),
    ("Changes", "changes.parquet"),
    ("Owed changes", "owed_changes.parquet"),
)
NUMBER_COLUMNS = {"row_number", "earnings_count", "plan_count", "plans", "rows", "accounts"}


def write_report(manifest: Manifest, run_dir: Path, path: Path) -> None:
    """Write the workbook of the run whose files are in `run_dir` to `path`."""
    options = {
        "constant_memory": True,
        "strings_to_formulas": False,
        "strings_to_numbers": False,
        "strings_to_urls": False,
    }
    with xlsxwriter.Workbook(str(path), options) as workbook:
        formats = Formats(workbook, currency_digits(manifest))
        summary = workbook.add_worksheet("Summary")
        notes = []
        for name, file in SHEETS:
            if not (run_dir / file).exists():
                continue
            frame = read(run_dir / file)
            shown = frame.head(SHEET_ROWS)
            texts = write_frame(workbook.add_worksheet(name), shown, formats)
            if shown.height < frame.height:
                notes.append(
                    f"{name}: the first {shown.height:,} of {frame.height:,} rows; "
                    f"all of them are in {file} in the run folder"
                )
            notes += amounts_as_text(name, texts)
        write_summary(summary, manifest, formats, notes)


def read(path: Path) -> pl.DataFrame:
    """A run file as a frame: Parquet as typed, payments.csv with its amounts as decimals."""
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    frame = pl.read_csv(path, infer_schema=False)
    return frame.with_columns(
        pl.col("amount").cast(pl.Decimal(18, 2)), pl.col("plan_count").cast(pl.Int64)
    )


class Formats:
    """The workbook's cell formats: a header, and an amount format per count of decimals."""

    def __init__(self, workbook: xlsxwriter.Workbook, digits: dict[str, int]) -> None:
        self.digits = digits
        self.header = workbook.add_format({"bold": True, "bottom": 1})
        self.title = workbook.add_format({"bold": True, "font_size": 12})
        self.integer = workbook.add_format({"num_format": "#,##0"})
        self.date = workbook.add_format({"num_format": "yyyy-mm-dd"})
        self.money = {
            places: workbook.add_format(
                {"num_format": "#,##0" + ("." + "0" * places if places else "")}
            )
            for places in range(0, 3)
        }

    def amount(self, currency: object) -> Format:
        return self.money[self.digits.get(str(currency), 2)]


def amounts_as_text(sheet: str, count: int) -> list[str]:
    """The Summary's note on the amounts of a sheet written as text, if any."""
    if not count:
        return []
    return [
        f"{sheet}: {count:,} amount(s) beyond {LARGEST_NUMBER:,} written as their exact text, "
        "not as numbers (a spreadsheet's number holds 15 digits)"
    ]


def write_cell(sheet: Worksheet, row: int, col: int, value: Any, fmt: Format | None) -> bool:
    """One cell: numbers as numbers, everything else as text (never a formula). True if it is
    an amount written as text, being too large for a number."""
    if value is None:
        return False
    if isinstance(value, Decimal):
        if abs(value) > LARGEST_NUMBER:
            sheet.write_string(row, col, str(value))
            return True
        # Up to LARGEST_NUMBER, the number read back prints as this very decimal.
        sheet.write_number(row, col, float(value), fmt)
    elif isinstance(value, bool):
        sheet.write_string(row, col, "yes" if value else "no")
    elif isinstance(value, int):
        sheet.write_number(row, col, value, fmt)
    elif isinstance(value, dt.datetime):
        sheet.write_string(row, col, value.isoformat())
    elif isinstance(value, dt.date):
        sheet.write_datetime(row, col, dt.datetime(value.year, value.month, value.day), fmt)
    else:
        sheet.write_string(row, col, str(value))
    return False


def write_frame(sheet: Worksheet, frame: pl.DataFrame, formats: Formats) -> int:
    """A frame as a sheet: header frozen, a filter, widths from the header and the values.
    Returns how many amounts were written as text."""
    columns = frame.columns
    for col, name in enumerate(columns):
        sheet.write_string(0, col, name, formats.header)
    widths = [len(name) + 2 for name in columns]
    has_currency = "currency" in columns
    # Every decimal column is money (`read` gives the bank file's amounts as decimals): shown
    # with the currency of its row.
    money = {name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Decimal)}
    texts = 0
    for row, values in enumerate(frame.iter_rows(), start=1):
        currency = values[columns.index("currency")] if has_currency else None
        for col, value in enumerate(values):
            name = columns[col]
            fmt = (
                formats.amount(currency)
                if name in money
                else formats.date
                if isinstance(value, dt.date) and not isinstance(value, dt.datetime)
                else formats.integer
                if isinstance(value, int) and not isinstance(value, bool)
                else None
            )
            texts += write_cell(sheet, row, col, value, fmt)
            if row <= 200 and value is not None:
                widths[col] = max(widths[col], min(len(str(value)) + 2, 60))
    for col, width in enumerate(widths):
        sheet.set_column(col, col, width)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(frame.height, 1), max(len(columns) - 1, 0))
    return texts


def write_summary(
    sheet: Worksheet, manifest: Manifest, formats: Formats, notes: Iterable[str]
) -> None:
    """The run's summary tables one under the other, then the reconciliation, then the notes
    on the sheets (what was cut, amounts written as text)."""
    row = 0
    sheet.write_string(
        row, 0, f"coop-payouts {manifest.earning_month}, run {manifest.run_id}", formats.title
    )
    row += 1
    sheet.write_string(row, 0, f"paid on {manifest.payment_date}")
    row += 2
    texts = 0
    for table in summary_tables(manifest):
        if not table.rows:
            continue
        sheet.write_string(row, 0, table.title, formats.title)
        row += 1
        for col, name in enumerate(table.columns):
            sheet.write_string(row, col, name, formats.header)
        row += 1
        currency_at = table.columns.index("currency") if "currency" in table.columns else None
        for values in table.rows:
            currency = values[currency_at] if currency_at is not None else None
            for col, text in enumerate(values):
                name = table.columns[col]
                if name not in table.numeric or not text:
                    sheet.write_string(row, col, text)
                elif name in NUMBER_COLUMNS:
                    write_cell(sheet, row, col, int(text), formats.integer)
                else:
                    texts += write_cell(sheet, row, col, Decimal(text), formats.amount(currency))
            row += 1
        row += 1
    lines = [*summary_sentences(manifest), *amounts_as_text("Summary", texts), *notes]
    for line in lines:
        sheet.write_string(row, 0, line)
        row += 1
    sheet.set_column(0, 0, 18)
    sheet.set_column(1, 8, 16)
