"""The output models reject rows that must never be published (SPEC section 5)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pandera.errors
import polars as pl
import pytest

from coop_rules.money import MONEY
from coop_rules.payouts import payments
from schemas.outputs import Exceptions, Payments, Payouts
from tests.coop_rules import builders as b

D = Decimal
SCHEMA_ERRORS = (pandera.errors.SchemaError, pandera.errors.SchemaErrors)


@pytest.fixture(scope="module")
def month() -> b.MonthResult:
    """A small valid month: one plan paid in full, one capped, one held."""
    plans = [
        b.plan(),
        b.other_plan(),
        b.plan(plan_id="CP26-0003", mpn_id="8100456", status="Submitted"),
    ]
    limits = [b.limit(plan_id=p) for p in ("CP26-0001", "CP26-0002", "CP26-0003")]
    earnings = [
        b.earning(earning_id="E1", amount="5000.00"),
        b.earning(earning_id="E2", amount="15000.00", mpn_id="1093384"),
        b.earning(earning_id="E3", amount="70.00", mpn_id="8100456"),
        b.earning(earning_id="E4", amount="NaN"),
    ]
    return b.run(plans=plans, limits=limits, earnings=earnings)


def exceptions_of(result: b.MonthResult) -> pl.DataFrame:
    return result.exceptions.select(
        pl.lit(b.RUN_ID).alias("run_id"), pl.lit(b.MONTH).alias("earning_month"), pl.all()
    )


def test_a_valid_month_passes(month: b.MonthResult) -> None:
    Payouts.validate(month.payouts)
    Exceptions.validate(exceptions_of(month))
    Payments.validate(payments(month.payouts))


def _on_plan(plan_id: str, **columns: pl.Expr) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def change(frame: pl.DataFrame) -> pl.DataFrame:
        hit = pl.col("plan_id") == plan_id
        return frame.with_columns(
            pl.when(hit).then(expr).otherwise(pl.col(name)).alias(name)
            for name, expr in columns.items()
        )

    return change


money = lambda text: pl.lit(D(text)).cast(MONEY)  # noqa: E731

BAD_PAYOUTS = [
    pytest.param(
        _on_plan("CP26-0002", payable_amount=money("15000.00"), unpaid_amount=money("0.00")),
        "payable_within_limit",
        id="payable-above-limit",
    ),
    pytest.param(
        _on_plan("CP26-0001", unpaid_amount=money("0.01")),
        "earned_is_payable_plus_unpaid",
        id="earned-is-not-payable-plus-unpaid",
    ),
    pytest.param(
        _on_plan("CP26-0003", payable_amount=money("70.00"), unpaid_amount=money("0.00")),
        "payable_within_limit",
        id="HELD-row-with-a-payable-amount",
    ),
    pytest.param(
        _on_plan("CP26-0001", payable_amount=money("-1.00"), unpaid_amount=money("5001.00")),
        "payable_within_limit",
        id="negative-payable",
    ),
    pytest.param(
        lambda frame: frame.with_columns(pl.col("earned_amount").cast(pl.Float64)),
        "earned_amount",
        id="float-amount-column",
    ),
    pytest.param(
        lambda frame: frame.with_columns(pl.col("payable_amount").cast(pl.Decimal(18, 4))),
        "payable_amount",
        id="decimal-of-another-scale",
    ),
    pytest.param(
        _on_plan("CP26-0001", outcome=pl.lit("PAID")),
        "outcome",
        id="unknown-outcome",
    ),
    pytest.param(
        _on_plan("CP26-0001", reason=pl.lit("TOO_BIG")),
        "reason",
        id="unknown-reason",
    ),
    pytest.param(
        lambda frame: pl.concat([frame, frame.head(1)]),
        "plan_id",
        id="two-rows-for-one-plan",
    ),
]


@pytest.mark.parametrize(("spoil", "named"), BAD_PAYOUTS)
def test_payouts_model_rejects(
    month: b.MonthResult, spoil: Callable[[pl.DataFrame], pl.DataFrame], named: str
) -> None:
    with pytest.raises(SCHEMA_ERRORS) as raised:
        Payouts.validate(spoil(month.payouts), lazy=True)
    assert named in str(raised.value)


BAD_EXCEPTIONS = [
    pytest.param(lambda f: f.with_columns(code=pl.lit("OOPS")), "code", id="unknown-code"),
    pytest.param(lambda f: f.with_columns(row_number=pl.lit(0, pl.Int64)), "row_number",
                 id="row_number-0"),
    pytest.param(lambda f: f.with_columns(source=pl.lit("people")), "source", id="unknown-source"),
    pytest.param(lambda f: f.with_columns(pl.col("amount").cast(pl.Float64)), "amount",
                 id="float-amount"),
]  # fmt: skip


@pytest.mark.parametrize(("spoil", "named"), BAD_EXCEPTIONS)
def test_exceptions_model_rejects(
    month: b.MonthResult, spoil: Callable[[pl.DataFrame], pl.DataFrame], named: str
) -> None:
    with pytest.raises(SCHEMA_ERRORS) as raised:
        Exceptions.validate(spoil(exceptions_of(month)), lazy=True)
    assert named in str(raised.value)


BAD_PAYMENTS = [
    pytest.param(lambda f: f.with_columns(amount=money("0.00")), "amount", id="amount-0"),
    pytest.param(lambda f: f.with_columns(pl.col("amount").cast(pl.Float64)), "amount",
                 id="float-amount"),
    pytest.param(lambda f: pl.concat([f, f.head(1)]), "mpn_id", id="two-rows-per-partner-currency"),
]  # fmt: skip


@pytest.mark.parametrize(("spoil", "named"), BAD_PAYMENTS)
def test_payments_model_rejects(
    month: b.MonthResult, spoil: Callable[[pl.DataFrame], pl.DataFrame], named: str
) -> None:
    with pytest.raises(SCHEMA_ERRORS) as raised:
        Payments.validate(spoil(payments(month.payouts)), lazy=True)
    assert named in str(raised.value)
