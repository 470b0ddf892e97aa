"""Money as exact decimal text and `Decimal(18, 2)` (SPEC section 3): never a float."""

from __future__ import annotations

import polars as pl

MONEY = pl.Decimal(18, 2)
ZERO = pl.lit(0).cast(MONEY)


def fraction_digits(text: pl.Expr) -> pl.Expr:
    """Digits after the point of plain decimal text (0 when there is no point)."""
    return text.str.extract(r"\.([0-9]*)$", 1).str.len_chars().fill_null(0)


def integer_digits(text: pl.Expr) -> pl.Expr:
    """Significant digits before the point of plain decimal text."""
    return (
        text.str.replace(r"^[+-]", "")
        .str.replace(r"\..*$", "")
        .str.replace(r"^0+", "")
        .str.len_chars()
    )


def to_money(expr: pl.Expr) -> pl.Expr:
    """Narrow a decimal sum back to `Decimal(18, 2)`; a value that does not fit raises."""
    return expr.cast(MONEY, strict=True)
