"""Output datasets (docs/payouts.md, docs/payments.md, docs/reruns.md), validated before anything
is published."""

from __future__ import annotations

import datetime as dt
import decimal

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.engines.polars_engine import DateTime, Decimal
from pandera.polars import Field

from coop_rules.forms import CURRENCY_FORM, MONTH_FORM, MPN_ID_FORM
from coop_rules.money import ZERO
from coop_rules.payments import payment_id
from coop_rules.vocabulary import Code, Dataset, LedgerKind, Outcome, PaymentStatus, Reason

Money = Decimal(18, 2)  # pandera's polars Decimal(precision, scale)
WideMoney = Decimal(38, 2)  # a sum or a difference of amounts, exact beyond Decimal(18, 2)
Instant = DateTime(time_zone="UTC", time_unit="us")
MPN_FORM = MPN_ID_FORM


def _payment_id_form() -> pl.Expr:
    """The payment_id a row's date, mpn_id and currency give (coop_rules.payments.payment_id)."""
    return payment_id(pl.col("payment_date"))


class Payouts(pa.DataFrameModel):
    """One row per (plan, M) with routed earnings."""

    run_id: str = Field(nullable=False)
    earning_month: str = Field(nullable=False, str_matches=MONTH_FORM)
    payment_date: dt.date = Field(nullable=False)
    plan_id: str = Field(nullable=False, unique=True)
    mpn_id: str = Field(nullable=False, str_matches=MPN_FORM)
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


class PaymentOrders(pa.DataFrameModel):
    """payments.csv: one payment order per account whose batch status is PAY (docs/payments.md)."""

    payment_id: str = Field(nullable=False, unique=True)
    mpn_id: str = Field(nullable=False, str_matches=MPN_FORM)
    currency: str = Field(nullable=False, str_matches=CURRENCY_FORM)
    payment_date: dt.date = Field(nullable=False)
    amount: Money = Field(nullable=False, gt=decimal.Decimal("0"))
    # 0 when the order pays only a balance brought forward.
    plan_count: pl.Int64 = Field(nullable=False, ge=0)

    class Config:
        strict = True
        ordered = True
        unique = ["mpn_id", "currency"]

    @pa.dataframe_check(name="payment_id_is_date_mpn_id_currency")
    def payment_id_form(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("payment_id") == _payment_id_form())


class Statements(pa.DataFrameModel):
    """A batch statement: one row per account with a non-zero owed or payable this month."""

    run_id: str = Field(nullable=False)
    earning_month: str = Field(nullable=False, str_matches=MONTH_FORM)
    payment_date: dt.date = Field(nullable=False)
    mpn_id: str = Field(nullable=False, str_matches=MPN_FORM)
    currency: str = Field(nullable=False, str_matches=CURRENCY_FORM)
    payable_this_month: Money = Field(nullable=False, ge=decimal.Decimal("0"))
    brought_forward: Money = Field(nullable=False)
    owed: Money = Field(nullable=False)
    order_amount: Money = Field(nullable=False, ge=decimal.Decimal("0"))
    forfeit_amount: Money = Field(nullable=False, ge=decimal.Decimal("0"))
    carried_amount: Money = Field(nullable=False)
    status: str = Field(nullable=False, isin=[s.value for s in PaymentStatus])
    # Unique through its form and the account's one row (pandera counts nulls as repeats).
    payment_id: str = Field(nullable=True)

    class Config:
        strict = True
        ordered = True
        unique = ["mpn_id", "currency"]

    @pa.dataframe_check(name="owed_is_brought_forward_plus_payable_this_month")
    def owed_sources(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("owed") == pl.col("brought_forward") + pl.col("payable_this_month")
        )

    @pa.dataframe_check(name="owed_is_order_plus_forfeit_plus_carried")
    def owed_split(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("owed")
            == pl.col("order_amount") + pl.col("forfeit_amount") + pl.col("carried_amount")
        )

    @pa.dataframe_check(name="order_is_owed_on_PAY_only")
    def order_on_pay(cls, data: PolarsData) -> pl.LazyFrame:
        pays = pl.col("status") == PaymentStatus.PAY.value
        order = pl.col("order_amount")
        return data.lazyframe.select(
            pl.when(pays).then((order == pl.col("owed")) & (order > ZERO)).otherwise(order == ZERO)
        )

    @pa.dataframe_check(name="forfeit_is_owed_on_FORFEITED_only")
    def forfeit_on_forfeited(cls, data: PolarsData) -> pl.LazyFrame:
        forfeits = pl.col("status") == PaymentStatus.FORFEITED.value
        forfeit = pl.col("forfeit_amount")
        return data.lazyframe.select(
            pl.when(forfeits)
            .then((forfeit == pl.col("owed")) & (forfeit > ZERO))
            .otherwise(forfeit == ZERO)
        )

    @pa.dataframe_check(name="payment_id_on_PAY_only")
    def payment_id_on_pay(cls, data: PolarsData) -> pl.LazyFrame:
        pays = pl.col("status") == PaymentStatus.PAY.value
        return data.lazyframe.select(
            pl.when(pays)
            .then((pl.col("payment_id") == _payment_id_form()).fill_null(False))
            .otherwise(pl.col("payment_id").is_null())
        )

    @pa.dataframe_check(name="status_agrees_with_the_sign_of_owed")
    def status_sign(cls, data: PolarsData) -> pl.LazyFrame:
        owed = pl.col("owed")
        status = pl.col("status")
        return data.lazyframe.select(
            ((status == PaymentStatus.RECOVERING.value) == (owed < ZERO))
            & ((status == PaymentStatus.NOTHING_DUE.value) == (owed == ZERO))
        )


class Ledger(pa.DataFrameModel):
    """What was released (PAYMENT) and forfeited (FORFEIT); append-only."""

    payment_id: str = Field(nullable=True)
    kind: str = Field(nullable=False, isin=[k.value for k in LedgerKind])
    mpn_id: str = Field(nullable=False, str_matches=MPN_FORM)
    currency: str = Field(nullable=False, str_matches=CURRENCY_FORM)
    payment_date: dt.date = Field(nullable=False)
    amount: Money = Field(nullable=False, gt=decimal.Decimal("0"))
    earning_month: str = Field(nullable=False, str_matches=MONTH_FORM)
    run_id: str = Field(nullable=False)
    approved_by: str = Field(nullable=False, str_matches=r"\S")
    released_at: Instant = Field(nullable=False)

    class Config:
        strict = True
        ordered = True

    @pa.dataframe_check(name="payment_id_on_PAYMENT_only")
    def payment_id_on_payment(cls, data: PolarsData) -> pl.LazyFrame:
        payment = pl.col("kind") == LedgerKind.PAYMENT.value
        return data.lazyframe.select(
            pl.when(payment)
            .then((pl.col("payment_id") == _payment_id_form()).fill_null(False))
            .otherwise(pl.col("payment_id").is_null())
        )

    @pa.dataframe_check(name="one_row_per_account_and_payment_date")
    def one_per_account(cls, data: PolarsData) -> pl.LazyFrame:
        # A batch has one statement row per account, and a released batch is never released
        # again, so the ledger holds at most one row per account and payment date.
        key = ["mpn_id", "currency", "payment_date"]
        return data.lazyframe.select(~pl.struct(key).is_duplicated())


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


class OwedChanges(pa.DataFrameModel):
    """Per account whose owed a run changes: before, after and the difference (docs/payments.md,
    "Accounts whose owed changes"). The difference of two balances may exceed 16 digits."""

    mpn_id: str = Field(nullable=False, str_matches=MPN_FORM)
    currency: str = Field(nullable=False, str_matches=CURRENCY_FORM)
    before: Money = Field(nullable=False)
    after: Money = Field(nullable=False)
    difference: WideMoney = Field(nullable=False)

    class Config:
        strict = True
        ordered = True
        unique = ["mpn_id", "currency"]
