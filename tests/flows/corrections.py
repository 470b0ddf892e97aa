"""A correction finance might make to an input folder, shared by the rerun tests."""

from __future__ import annotations

from pathlib import Path

import polars as pl

# One of CP26-0001's April earnings: the seed's 5,000 under a 10,000 limit.
CORRECTED_EARNING = "ERN-2604-0075"


def correct_earning(
    inputs: Path, earning_id: str = CORRECTED_EARNING, amount: str = "6000.00"
) -> str:
    """Rewrite one earnings row's amount in place (same path); return the amount it had."""
    path = inputs / "earnings.csv"
    frame = pl.read_csv(path, infer_schema=False)
    old = frame.filter(pl.col("earning_id") == earning_id).item(0, "amount")
    frame.with_columns(
        pl.when(pl.col("earning_id") == earning_id)
        .then(pl.lit(amount))
        .otherwise(pl.col("amount"))
        .alias("amount")
    ).write_csv(path)
    return old
