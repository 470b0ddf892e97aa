"""Money as exact decimal text and `Decimal(18, 2)` (docs/inputs.md, "Amounts and currencies"):
never a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import polars as pl
from pydantic import Field

MONEY = pl.Decimal(18, 2)
ZERO = pl.lit(0).cast(MONEY)
# Sums over many rows and months are kept in this width (polars' own for a decimal sum), so a
# total that MONEY cannot hold is compared exactly, never cut (docs/payments.md).
WIDE = pl.Decimal(38, 2)
# The largest amount MONEY holds: 16 digits before the point, 2 after.
LARGEST = Decimal("9999999999999999.99")
# An exact amount as a JSON record carries it: plain decimal text, never a float.
AmountText = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$")]


def fraction_digits(text: pl.Expr) -> pl.Expr:
    """Digits after the point of plain decimal text (0 when there is no point)."""
    point = text.str.find(".", literal=True).cast(pl.Int64)
    return (text.str.len_bytes().cast(pl.Int64) - point - 1).fill_null(0)


def to_money(expr: pl.Expr) -> pl.Expr:
    """Narrow a decimal sum back to `Decimal(18, 2)`; a value that does not fit raises."""
    return expr.cast(MONEY, strict=True)


def to_wide(expr: pl.Expr) -> pl.Expr:
    """A decimal amount or sum as `Decimal(38, 2)`: exact, with room for any sum of amounts."""
    return expr.cast(WIDE, strict=True)


def fits_money(expr: pl.Expr) -> pl.Expr:
    """Whether a `Decimal(38, 2)` amount fits `Decimal(18, 2)`: an exact comparison."""
    largest = pl.lit(LARGEST, dtype=WIDE)
    return expr.is_between(-largest, largest)
