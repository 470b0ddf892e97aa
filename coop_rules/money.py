"""Money as exact decimal text and `Decimal(18, 2)` (docs/inputs.md, "Amounts and currencies"):
never a float."""

from __future__ import annotations

import polars as pl

MONEY = pl.Decimal(18, 2)
ZERO = pl.lit(0).cast(MONEY)


def fraction_digits(text: pl.Expr) -> pl.Expr:
    """Digits after the point of plain decimal text (0 when there is no point)."""
    point = text.str.find(".", literal=True).cast(pl.Int64)
    return (text.str.len_bytes().cast(pl.Int64) - point - 1).fill_null(0)


def to_money(expr: pl.Expr) -> pl.Expr:
    """Narrow a decimal sum back to `Decimal(18, 2)`; a value that does not fit raises."""
    return expr.cast(MONEY, strict=True)
