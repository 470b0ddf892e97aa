"""What a rerun changed against the run it replaced (docs/reruns.md, "changes.parquet")."""

from __future__ import annotations

import polars as pl

from coop_rules.money import MONEY, ZERO, to_money

CHANGE_COLUMNS = (
    "earning_month",
    "previous_run_id",
    "run_id",
    "plan_id",
    "currency",
    "previous_earned_amount",
    "new_earned_amount",
    "earned_difference",
    "previous_payable_amount",
    "new_payable_amount",
    "payable_difference",
    "previous_outcome",
    "new_outcome",
)


def changes(
    previous: pl.DataFrame, new: pl.DataFrame, previous_run_id: str, run_id: str, month: str
) -> pl.DataFrame:
    """One row per plan whose earned amount, payable amount or outcome changed between two
    runs of a month (a plan new to the month or gone from it included), with the differences."""

    def side(frame: pl.DataFrame, prefix: str) -> pl.DataFrame:
        return frame.select(
            "plan_id",
            pl.col("currency").alias(f"{prefix}_currency"),
            pl.col("earned_amount").alias(f"{prefix}_earned_amount"),
            pl.col("payable_amount").alias(f"{prefix}_payable_amount"),
            pl.col("outcome").alias(f"{prefix}_outcome"),
        )

    def difference(name: str) -> pl.Expr:
        new_value = pl.col(f"new_{name}_amount").fill_null(ZERO)
        old_value = pl.col(f"previous_{name}_amount").fill_null(ZERO)
        return to_money(new_value - old_value).alias(f"{name}_difference")

    joined = side(previous, "previous").join(
        side(new, "new"), on="plan_id", how="full", coalesce=True
    )
    changed = (
        pl.col("previous_earned_amount").ne_missing(pl.col("new_earned_amount"))
        | pl.col("previous_payable_amount").ne_missing(pl.col("new_payable_amount"))
        | pl.col("previous_outcome").ne_missing(pl.col("new_outcome"))
    )
    return (
        joined.filter(changed)
        .with_columns(
            pl.lit(month).alias("earning_month"),
            pl.lit(previous_run_id).alias("previous_run_id"),
            pl.lit(run_id).alias("run_id"),
            pl.coalesce("new_currency", "previous_currency").alias("currency"),
            difference("earned"),
            difference("payable"),
            pl.col("previous_earned_amount", "new_earned_amount").cast(MONEY),
        )
        .select(CHANGE_COLUMNS)
        .sort("plan_id")
    )


def change_totals(changes: pl.DataFrame) -> pl.DataFrame:
    """Per currency: plans changed and the sums of the differences."""
    return (
        changes.group_by("currency")
        .agg(
            pl.len().cast(pl.Int64).alias("plans"),
            to_money(pl.col("earned_difference").sum()).alias("earned_difference"),
            to_money(pl.col("payable_difference").sum()).alias("payable_difference"),
        )
        .sort("currency")
    )
