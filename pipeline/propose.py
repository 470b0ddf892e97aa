"""Stage "propose payments": the batch for the payment date, from each account's balance
(docs/payments.md).

`flows/stages/propose.py` gathers what the balance rests on (the payable amounts of the published
months, the ledger, the earlier batches still proposed) and this stage turns it into statement
rows, payment orders and the payments reconciliation, with the rules of `coop_rules/payments.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from coop_rules import payments
from coop_rules.integrity import OK
from coop_rules.money import to_wide
from coop_rules.settings import RuleSettings


@dataclass(frozen=True)
class Batch:
    """A proposed batch: its statement rows, its payment orders, and its reconciliation."""

    statements: pl.DataFrame
    orders: pl.DataFrame
    reconciliation: payments.PaymentsReconciliation


def valid_profiles(profiles: pl.DataFrame) -> pl.DataFrame:
    """The profile rows without exceptions."""
    return profiles.filter(pl.col(OK)).select(list(payments.PROFILE_SCHEMA))


def propose(
    *,
    payouts: pl.DataFrame,
    payable: pl.DataFrame,
    released: pl.DataFrame,
    proposed: pl.DataFrame,
    profiles: pl.DataFrame,
    month: str,
    payment_date: date,
    run_id: str,
    settings: RuleSettings,
) -> Batch:
    """The batch of `month`: `payouts` are this run's payout rows; `payable` the payable
    amounts of every published month <= M with this run's M in place of the published one."""
    statements = payments.statement_rows(
        payable=payable,
        released=released,
        proposed=proposed,
        profiles=valid_profiles(profiles),
        month=month,
        payment_date=payment_date,
        run_id=run_id,
        settings=settings,
    )
    reconciliation = payments.reconcile_payments(
        statements, payable=payable, released=released, proposed=proposed, month=month
    )
    return Batch(statements, payments.payment_orders(statements, payouts), reconciliation)


def difference_to_next_batch(now: pl.DataFrame, before: pl.DataFrame) -> pl.DataFrame:
    """Per currency, what a month published behind a released batch adds to (or takes from)
    the next batch: its payable amounts now less those published before."""

    def per_currency(frame: pl.DataFrame, name: str) -> pl.DataFrame:
        return frame.group_by("currency").agg(to_wide(pl.col("payable_amount").sum()).alias(name))

    return (
        per_currency(now, "now")
        .join(per_currency(before, "before"), on="currency", how="full", coalesce=True)
        .with_columns(pl.col("now", "before").fill_null(0))
        .select("currency", to_wide(pl.col("now") - pl.col("before")).alias("difference"))
        .sort("currency")
    )
