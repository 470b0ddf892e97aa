"""The reconciliation of a month (docs/payouts.md, "Reconciliation"): every in-scope earnings row
ends in exactly one place, and every amount is accounted for. A run where it fails publishes
nothing."""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel

from coop_rules.money import ZERO, AmountText, to_money
from coop_rules.vocabulary import Dataset


class CurrencyReconciliation(BaseModel):
    """One currency: in-scope amounts that parse and fit = earned + exception amounts."""

    currency: str
    input_amount: AmountText
    earned_amount: AmountText
    exception_amount: AmountText
    holds: bool


class Reconciliation(BaseModel):
    """The month's reconciliation as the manifest records it (docs/payouts.md,
    "Reconciliation"); unknown keys of a newer version are ignored on reading."""

    in_scope_rows: int
    routed_rows: int
    exception_rows: int
    rows_hold: bool
    per_currency: list[CurrencyReconciliation]
    amounts_hold: bool
    payout_rows_unbalanced: int
    holds: bool


def reconcile(
    in_scope_rows: int,
    input_sums: pl.DataFrame,
    payout_rows: pl.DataFrame,
    exceptions: pl.DataFrame | pl.LazyFrame,
) -> Reconciliation:
    """The figures of the month's reconciliation, and whether each holds.

    Rows: in-scope = routed to payouts + with exceptions (each row once, however many problems).
    Amounts per currency (`input_sums`: currency, input): in-scope amounts that parse and fit
    their currency = earned + exception amounts. Every payout row: earned = payable + unpaid.
    """
    # The three columns read, not the messages: a 40M-row month has millions of exception rows.
    exception_rows = (
        exceptions.lazy()
        .filter(pl.col("source") == Dataset.EARNINGS.value)
        .select("row_number", "amount", "currency")
        .unique("row_number")
        .collect()
    )
    routed_rows = int(payout_rows.get_column("earnings_count").sum() or 0)
    rows_hold = in_scope_rows == routed_rows + exception_rows.height

    earned = payout_rows.group_by("currency").agg(
        to_money(pl.col("earned_amount").sum()).alias("earned")
    )
    excepted = (
        exception_rows.filter(pl.col("amount").is_not_null())
        .group_by("currency")
        .agg(to_money(pl.col("amount").sum()).alias("exceptions"))
    )
    per_currency = (
        input_sums.join(earned, on="currency", how="full", coalesce=True)
        .join(excepted, on="currency", how="full", coalesce=True)
        .with_columns(pl.col("input", "earned", "exceptions").fill_null(ZERO))
        .with_columns((pl.col("input") == pl.col("earned") + pl.col("exceptions")).alias("holds"))
        .sort("currency")
    )
    rows_unbalanced = payout_rows.filter(
        pl.col("earned_amount") != pl.col("payable_amount") + pl.col("unpaid_amount")
    ).height
    amounts_hold = bool(per_currency.get_column("holds").all())
    return Reconciliation(
        in_scope_rows=in_scope_rows,
        routed_rows=routed_rows,
        exception_rows=exception_rows.height,
        rows_hold=rows_hold,
        per_currency=[
            CurrencyReconciliation(
                currency=row["currency"],
                input_amount=str(row["input"]),
                earned_amount=str(row["earned"]),
                exception_amount=str(row["exceptions"]),
                holds=row["holds"],
            )
            for row in per_currency.iter_rows(named=True)
        ],
        amounts_hold=amounts_hold,
        payout_rows_unbalanced=rows_unbalanced,
        holds=rows_hold and amounts_hold and rows_unbalanced == 0,
    )
