"""Output datasets (SPEC section 5), validated before anything is published."""

from __future__ import annotations

import datetime as dt
import decimal

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.engines.polars_engine import Decimal
from pandera.polars import Field

from coop_rules.money import ZERO
from coop_rules.vocabulary import Code, Dataset, Outcome, Reason

Money = Decimal(18, 2)  # pandera's polars Decimal(precision, scale)


class Payouts(pa.DataFrameModel):
    """One row per (plan, M) with routed earnings."""

    run_id: str = Field(nullable=False)
    earning_month: str = Field(nullable=False, str_matches=r"^[0-9]{4}-[0-9]{2}$")
    payment_date: dt.date = Field(nullable=False)
    plan_id: str = Field(nullable=False, unique=True)
    mpn_id: str = Field(nullable=False, str_matches=r"^[0-9]{6,10}$")
    program: str = Field(nullable=False)
    fund: str = Field(nullable=False)
    period: str = Field(nullable=False)
    market: str = Field(nullable=False)
    currency: str = Field(nullable=False, str_matches=r"^[A-Z]{3}$")
    status: str = Field(nullable=False)
    earnings_count: pl.Int64 = Field(nullable=False, gt=0)
    earned_amount: Money = Field(nullable=False)
    limit_amount: Money = Field(nullable=True)
    paid_before_amount: Money = Field(nullable=False)
    payable_amount: Money = Field(nullable=False)
    unpaid_amount: Money = Field(nullable=False)
    outcome: str = Field(nullable=False, isin=[o.value for o in Outcome])
    reason: str = Field(nullable=True, isin=[r.value for r in Reason])

    class Config:
        strict = True
        ordered = True

    @pa.dataframe_check(name="earned_is_payable_plus_unpaid")
    def balanced(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("earned_amount") == pl.col("payable_amount") + pl.col("unpaid_amount")
        )

    @pa.dataframe_check(name="payable_within_limit")
    def within_limit(cls, data: PolarsData) -> pl.LazyFrame:
        payable = pl.col("payable_amount")
        pays = pl.col("outcome") == Outcome.PAY.value
        return data.lazyframe.select(
            (payable >= ZERO)
            & (pays | (payable == ZERO))
            & (~pays | (payable <= pl.col("limit_amount")))
        )


class Exceptions(pa.DataFrameModel):
    """One row per problem found in an input row."""

    run_id: str = Field(nullable=False)
    earning_month: str = Field(nullable=False)
    source: str = Field(nullable=False, isin=[d.value for d in Dataset])
    row_number: pl.Int64 = Field(nullable=False, ge=1)
    record_key: str = Field(nullable=True)
    code: str = Field(nullable=False, isin=[c.value for c in Code])
    column: str = Field(nullable=True)
    value: str = Field(nullable=True)
    message: str = Field(nullable=False)
    amount: Money = Field(nullable=True)
    currency: str = Field(nullable=True)

    class Config:
        strict = True
        ordered = True


class Payments(pa.DataFrameModel):
    """What is paid on the payment date, per (mpn_id, currency)."""

    mpn_id: str = Field(nullable=False)
    currency: str = Field(nullable=False)
    payment_date: dt.date = Field(nullable=False)
    amount: Money = Field(nullable=False, gt=decimal.Decimal("0"))
    plan_count: pl.Int64 = Field(nullable=False, gt=0)

    class Config:
        strict = True
        ordered = True
        unique = ["mpn_id", "currency"]


class Changes(pa.DataFrameModel):
    """Per plan whose earned, payable or outcome changed, what a rerun changed against the run
    it replaced (docs/reruns.md)."""

    earning_month: str = Field(nullable=False)
    previous_run_id: str = Field(nullable=False)
    run_id: str = Field(nullable=False)
    plan_id: str = Field(nullable=False, unique=True)
    currency: str = Field(nullable=False)
    previous_earned_amount: Money = Field(nullable=True)
    new_earned_amount: Money = Field(nullable=True)
    earned_difference: Money = Field(nullable=False)
    previous_payable_amount: Money = Field(nullable=True)
    new_payable_amount: Money = Field(nullable=True)
    payable_difference: Money = Field(nullable=False)
    previous_outcome: str = Field(nullable=True)
    new_outcome: str = Field(nullable=True)

    class Config:
        strict = True
        ordered = True
