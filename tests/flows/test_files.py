"""Writing output files: payments.csv is plain text a spreadsheet cannot run as a formula."""

from __future__ import annotations

import errno
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from coop_rules.money import MONEY
from flows import files
from flows.files import payments_csv


def _payments(mpn_id: str, amount: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "mpn_id": [mpn_id],
            "currency": ["USD"],
            "payment_date": [date(2026, 5, 15)],
            "amount": [Decimal(amount)],
            "plan_count": [2],
        },
        schema_overrides={"amount": MONEY},
    )


def test_payments_csv_is_plain_decimal_text() -> None:
    text = payments_csv(_payments("4412907", "10000.00")).decode()
    assert (
        text
        == "mpn_id,currency,payment_date,amount,plan_count\n4412907,USD,2026-05-15,10000.00,2\n"
    )


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("+1234567", "'+1234567"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-1+2", "'-1+2"),
        ("0012345", "0012345"),
    ],
    ids=["equals", "plus", "at", "minus-formula", "leading-zeros-kept"],
)
def test_payments_csv_defuses_formulas(value: str, written: str) -> None:
    line = payments_csv(_payments(value, "1.00")).decode().splitlines()[1]
    assert line.startswith(written + ",") or line.startswith(f'"{written}",')


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(OSError("No space left on device (os error 28)"), id="ENOSPC-oserror-text"),
        pytest.param(
            pl.exceptions.ComputeError("io error: No space left on device (os error 28)"),
            id="ENOSPC-polars-text",
        ),
        pytest.param(OSError(errno.ENOSPC, "No space left on device"), id="ENOSPC-oserror"),
    ],
)
def test_a_failed_write_names_the_file_and_its_errno(tmp_path: Path, error: Exception) -> None:
    """polars' writers raise a full disk as an OSError or a polars error whose errno is only in
    its text (the Arrow writer: an OSError without errno); each becomes an OSError naming both."""
    found = files.write_error(error, tmp_path / "plans.arrow")
    assert isinstance(found, OSError)
    assert found.errno == errno.ENOSPC
    assert found.filename == str(tmp_path / "plans.arrow")
