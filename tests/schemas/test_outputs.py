"""The output models reject rows that must never be published (docs/payouts.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pandera.errors
import pandera.polars
import polars as pl
import pytest

from coop_rules.money import MONEY
from coop_rules.payments import (
    LEDGER_COLUMNS,
    OWED_CHANGE_SCHEMA,
    PAYABLE_SCHEMA,
    PAYMENT_ORDER_COLUMNS,
    PROFILE_SCHEMA,
    PROPOSED_SCHEMA,
    RELEASED_SCHEMA,
    STATEMENT_COLUMNS,
    STATEMENT_SCHEMA,
    ledger_rows,
    payment_orders,
    statement_rows,
)
from coop_rules.payouts import PAYOUT_COLUMNS
from coop_rules.reruns import CHANGE_COLUMNS
from coop_rules.vocabulary import PaymentStatus
from schemas.outputs import (
    Changes,
    Exceptions,
    Ledger,
    OwedChanges,
    PaymentOrders,
    Payouts,
    Statements,
)
from tests.coop_rules import builders as b

D = Decimal
SCHEMA_ERRORS = (pandera.errors.SchemaError, pandera.errors.SchemaErrors)


# --- One source per contract: a rule declares the columns it makes, its model checks them ------

# (model, the column tuple of the rule that makes its rows): coop_rules may not import schemas,
# so the rule's tuple is the source and each model is held to it here.
RULE_COLUMNS = [
    pytest.param(Payouts, PAYOUT_COLUMNS, id="payouts-PAYOUT_COLUMNS"),
    pytest.param(Statements, STATEMENT_COLUMNS, id="statements-STATEMENT_COLUMNS"),
    pytest.param(PaymentOrders, PAYMENT_ORDER_COLUMNS, id="payments-PAYMENT_ORDER_COLUMNS"),
    pytest.param(Ledger, LEDGER_COLUMNS, id="ledger-LEDGER_COLUMNS"),
    pytest.param(Changes, CHANGE_COLUMNS, id="changes-CHANGE_COLUMNS"),
    pytest.param(OwedChanges, tuple(OWED_CHANGE_SCHEMA), id="owed_changes-OWED_CHANGE_SCHEMA"),
]


@pytest.mark.parametrize(("model", "columns"), RULE_COLUMNS)
def test_an_output_model_has_the_columns_of_its_rule_in_order(
    model: type[pandera.polars.DataFrameModel], columns: tuple[str, ...]
) -> None:
    assert tuple(model.to_schema().columns) == columns


@pytest.mark.parametrize(
    ("model", "schema"),
    [
        pytest.param(Statements, STATEMENT_SCHEMA, id="statements-STATEMENT_SCHEMA"),
        pytest.param(OwedChanges, OWED_CHANGE_SCHEMA, id="owed_changes-OWED_CHANGE_SCHEMA"),
    ],
)
def test_an_output_model_has_the_types_of_its_rule(
    model: type[pandera.polars.DataFrameModel], schema: dict[str, pl.DataType]
) -> None:
    columns = model.to_schema().columns
    assert {name: column.dtype.type for name, column in columns.items()} == schema


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


# --- Payments: statements, payment orders, ledger ---------------------------------------------

PAY_DAY = date(2026, 5, 15)
ACTION = "Action required"


@pytest.fixture(scope="module")
def batch() -> pl.DataFrame:
    """A statement with every status, one account each."""

    def rows(schema: dict, data: list[tuple]) -> pl.DataFrame:
        return pl.DataFrame(data, schema=schema, orient="row")

    return statement_rows(
        payable=rows(PAYABLE_SCHEMA, [
            ("1000001", "USD", b.MONTH, D("300.00")),   # PAY
            ("1000002", "USD", b.MONTH, D("50.00")),    # BELOW_MINIMUM
            ("1000003", "JPY", b.MONTH, D("150000")),   # HELD_PROFILE
            ("1000004", "EUR", b.MONTH, D("250.00")),   # FORFEITED
            ("1000005", "USD", "2026-03", D("100.00")), # RECOVERING
            ("1000006", "USD", b.MONTH, D("40.00")),    # NOTHING_DUE
            ("1000006", "USD", "2026-03", D("60.00")),
        ]),
        released=rows(RELEASED_SCHEMA, [
            ("1000005", "USD", D("150.00")), ("1000006", "USD", D("100.00")),
        ]),
        proposed=rows(PROPOSED_SCHEMA, []),
        profiles=rows(PROFILE_SCHEMA, [
            (mpn, "Enrolled", None) for mpn in ("1000001", "1000002", "1000005", "1000006")
        ] + [
            ("1000003", ACTION, PAY_DAY), ("1000004", ACTION, date(2025, 1, 1)),
        ]),
        month=b.MONTH,
        payment_date=PAY_DAY,
        run_id=b.RUN_ID,
        settings=b.settings(),
    )  # fmt: skip


def orders_of(batch: pl.DataFrame) -> pl.DataFrame:
    payouts = batch.select(
        "mpn_id", "currency", pl.col("payable_this_month").alias("payable_amount")
    )
    return payment_orders(batch, payouts)


def ledger_of(batch: pl.DataFrame) -> pl.DataFrame:
    return ledger_rows(batch, "Megan Bowen", datetime(2026, 5, 10, 9, 30, tzinfo=UTC))


def test_a_valid_batch_passes(batch: pl.DataFrame) -> None:
    assert set(batch.get_column("status")) == {s.value for s in PaymentStatus}
    Statements.validate(batch)
    PaymentOrders.validate(orders_of(batch))
    Ledger.validate(ledger_of(batch))


def _on_status(which: str, **columns: pl.Expr) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def change(frame: pl.DataFrame) -> pl.DataFrame:
        hit = pl.col("status") == which
        return frame.with_columns(
            pl.when(hit).then(expr).otherwise(pl.col(name)).alias(name)
            for name, expr in columns.items()
        )

    return change


BAD_STATEMENTS = [
    pytest.param(_on_status("PAY", order_amount=money("299.99"), carried_amount=money("0.01")),
                 "order_is_owed_on_PAY_only", id="PAY-orders-less-than-owed"),
    pytest.param(_on_status("BELOW_MINIMUM", order_amount=money("50.00"),
                            carried_amount=money("0.00")),
                 "order_is_owed_on_PAY_only", id="order-on-a-BELOW_MINIMUM-row"),
    pytest.param(_on_status("RECOVERING", status=pl.lit("PAY"), order_amount=pl.col("owed"),
                            carried_amount=money("0.00")),
                 "order_amount", id="negative-payment"),
    pytest.param(_on_status("HELD_PROFILE", forfeit_amount=pl.col("owed"),
                            carried_amount=money("0.00")),
                 "forfeit_is_owed_on_FORFEITED_only", id="forfeit-on-a-HELD_PROFILE-row"),
    pytest.param(_on_status("PAY", carried_amount=money("1.00")),
                 "owed_is_order_plus_forfeit_plus_carried", id="carried-does-not-add-up"),
    pytest.param(_on_status("PAY", brought_forward=money("1.00")),
                 "owed_is_brought_forward_plus_payable_this_month",
                 id="brought-forward-does-not-add-up"),
    pytest.param(_on_status("PAY", payment_id=pl.lit(None, pl.String)),
                 "payment_id_on_PAY_only", id="PAY-without-payment_id"),
    pytest.param(_on_status("PAY", payment_id=pl.lit("20260615-1000001-USD")),
                 "payment_id_on_PAY_only", id="payment_id-of-another-date"),
    pytest.param(_on_status("HELD_PROFILE", payment_id=pl.lit("20260515-1000003-JPY")),
                 "payment_id_on_PAY_only", id="payment_id-on-a-held-row"),
    pytest.param(_on_status("NOTHING_DUE", status=pl.lit("BELOW_MINIMUM")),
                 "status_agrees_with_the_sign_of_owed", id="owed-0-not-NOTHING_DUE"),
    pytest.param(_on_status("PAY", status=pl.lit("PAID")), "status", id="unknown-status"),
    pytest.param(lambda f: pl.concat([f, f.head(1)]), "mpn_id", id="two-rows-for-one-account"),
    pytest.param(lambda f: f.with_columns(pl.col("owed").cast(pl.Float64)), "owed",
                 id="float-amount"),
]  # fmt: skip


@pytest.mark.parametrize(("spoil", "named"), BAD_STATEMENTS)
def test_statements_model_rejects(
    batch: pl.DataFrame, spoil: Callable[[pl.DataFrame], pl.DataFrame], named: str
) -> None:
    with pytest.raises(SCHEMA_ERRORS) as raised:
        Statements.validate(spoil(batch), lazy=True)
    assert named in str(raised.value)


BAD_ORDERS = [
    pytest.param(lambda f: f.with_columns(amount=money("0.00")), "amount", id="amount-0"),
    pytest.param(lambda f: f.with_columns(amount=money("-1.00")), "amount", id="amount-negative"),
    pytest.param(lambda f: f.with_columns(payment_id=pl.lit("1000001-USD")),
                 "payment_id_is_date_mpn_id_currency", id="payment_id-without-date"),
    pytest.param(lambda f: f.with_columns(plan_count=pl.lit(-1, pl.Int64)), "plan_count",
                 id="plan_count-negative"),
    pytest.param(lambda f: pl.concat([f, f]), "mpn_id", id="two-orders-for-one-account"),
]  # fmt: skip


@pytest.mark.parametrize(("spoil", "named"), BAD_ORDERS)
def test_payment_orders_model_rejects(
    batch: pl.DataFrame, spoil: Callable[[pl.DataFrame], pl.DataFrame], named: str
) -> None:
    with pytest.raises(SCHEMA_ERRORS) as raised:
        PaymentOrders.validate(spoil(orders_of(batch)), lazy=True)
    assert named in str(raised.value)


def test_a_payment_order_of_a_balance_brought_forward_has_no_plan() -> None:
    orders = pl.DataFrame(
        {
            "payment_id": ["20260515-1000001-USD"],
            "mpn_id": ["1000001"],
            "currency": ["USD"],
            "payment_date": [PAY_DAY],
            "amount": [D("250.00")],
            "plan_count": [0],
        },
        schema_overrides={"amount": MONEY, "plan_count": pl.Int64},
    )
    PaymentOrders.validate(orders)


BAD_LEDGER = [
    pytest.param(lambda f: f.with_columns(kind=pl.lit("REFUND")), "kind", id="unknown-kind"),
    pytest.param(lambda f: f.with_columns(approved_by=pl.lit(" ")), "approved_by",
                 id="blank-approved_by"),
    pytest.param(lambda f: f.with_columns(payment_id=pl.lit(None, pl.String)),
                 "payment_id_on_PAYMENT_only", id="PAYMENT-without-payment_id"),
    pytest.param(lambda f: f.with_columns(payment_id=pl.lit("20260515-1000004-EUR")),
                 "payment_id_on_PAYMENT_only", id="payment_id-on-a-FORFEIT"),
    pytest.param(lambda f: f.with_columns(amount=money("0.00")), "amount", id="amount-0"),
    pytest.param(lambda f: pl.concat([f, f.head(1)]), "one_row_per_account_and_payment_date",
                 id="an-account-paid-twice-on-one-date"),
    pytest.param(lambda f: f.with_columns(pl.col("released_at").dt.replace_time_zone(None)),
                 "released_at", id="released_at-without-time-zone"),
]  # fmt: skip


@pytest.mark.parametrize(("spoil", "named"), BAD_LEDGER)
def test_ledger_model_rejects(
    batch: pl.DataFrame, spoil: Callable[[pl.DataFrame], pl.DataFrame], named: str
) -> None:
    with pytest.raises(SCHEMA_ERRORS) as raised:
        Ledger.validate(spoil(ledger_of(batch)), lazy=True)
    assert named in str(raised.value)
