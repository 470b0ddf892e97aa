"""Payments of a batch (docs/payments.md): owed, the status of each account's statement row,
the payment orders, the amount text of payments.csv, the reconciliation and the ledger rows.

The rules are called directly on small frames; the property at the end checks them against a
plain-Python reading of the rules over generated balances.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coop_rules.money import MONEY
from coop_rules.payments import (
    LEDGER_COLUMNS,
    PAYABLE_SCHEMA,
    PAYMENT_ORDER_COLUMNS,
    PAYMENT_RULES,
    PROFILE_SCHEMA,
    PROPOSED_SCHEMA,
    RELEASED_SCHEMA,
    STATEMENT_COLUMNS,
    PaymentsReconciliation,
    amount_text,
    balances_beyond_money,
    ledger_rows,
    owed_changes,
    payment_orders,
    reconcile_payments,
    statement_rows,
)
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import PaymentStatus
from tests.coop_rules import builders as b

D = Decimal
MONTH = "2026-04"
EARLIER = "2026-03"
PAY_DAY = date(2026, 5, 15)
RUN_ID = "test-run"
MPN = b.MPN
SETTINGS = b.settings()
HOLD = timedelta(days=SETTINGS.hold_days)
EVERYONE: Any = object()  # a payment_profiles file listing every partner, Enrolled

Rows = list[tuple[Any, ...]]


def frame(schema: dict[str, pl.DataType], rows: Rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row")


def enrolled(*row_sets: Rows) -> Rows:
    """Profile rows enrolling every partner (the first value of each row) of `row_sets`."""
    partners = sorted({row[0] for rows in row_sets for row in rows})
    return [(mpn, "Enrolled", None) for mpn in partners]


def statements(
    *,
    payable: Rows = (),
    released: Rows = (),
    proposed: Rows = (),
    profiles: Rows | Any = EVERYONE,
    settings: RuleSettings = SETTINGS,
) -> pl.DataFrame:
    """statement_rows over rows given as tuples in the order of each frame's schema."""
    if profiles is EVERYONE:
        profiles = enrolled(payable, released, proposed)
    return statement_rows(
        payable=frame(PAYABLE_SCHEMA, list(payable)),
        released=frame(RELEASED_SCHEMA, list(released)),
        proposed=frame(PROPOSED_SCHEMA, list(proposed)),
        profiles=frame(PROFILE_SCHEMA, list(profiles)),
        month=MONTH,
        payment_date=PAY_DAY,
        run_id=RUN_ID,
        settings=settings,
    )


def one_account(
    *,
    this_month: str = "0",
    earlier: str = "0",
    released: str = "0",
    proposed: tuple[str, str] = ("0", "0"),
    currency: str = "USD",
    profile: tuple[str, date | None] | None | Any = EVERYONE,
) -> pl.DataFrame:
    """The statement of one account: payable in M and in an earlier month, its ledger total,
    and the (order, forfeit) of an earlier proposed batch. `profile` is EVERYONE (the account
    enrolled), None (a file that does not list the account) or (profile_status,
    action_required_since)."""
    return statements(
        payable=[(MPN, currency, MONTH, D(this_month)), (MPN, currency, EARLIER, D(earlier))],
        released=[(MPN, currency, D(released))],
        proposed=[(MPN, currency, D(proposed[0]), D(proposed[1]))],
        profiles=profile
        if profile is EVERYONE
        else [("9999999", "Enrolled", None)] + ([] if profile is None else [(MPN, *profile)]),
    )


ACTION = "Action required"
WITHIN_HOLD = PAY_DAY - HOLD  # payment date exactly since + hold_days: still held
PAST_HOLD = PAY_DAY - HOLD - timedelta(days=1)  # one day later: forfeited


def case(status: PaymentStatus, name: str, expected: tuple[str, str, str, str], **account: Any):
    """One account; `expected` is (owed, order_amount, forfeit_amount, carried_amount)."""
    return pytest.param(account, status, expected, id=f"{status.value}-{name}")


STATUS_CASES = [
    case(PaymentStatus.PAY, "owed-above-the-minimum", ("300.00", "300.00", "0", "0"),
         this_month="300.00"),
    case(PaymentStatus.PAY, "owed-exactly-the-minimum", ("200.00", "200.00", "0", "0"),
         this_month="200.00"),
    case(PaymentStatus.BELOW_MINIMUM, "one-cent-under-the-minimum", ("199.99", "0", "0", "199.99"),
         this_month="199.99"),
    case(PaymentStatus.PAY, "JPY-exactly-its-minimum", ("30000", "30000", "0", "0"),
         this_month="30000", currency="JPY"),
    case(PaymentStatus.BELOW_MINIMUM, "JPY-under-its-minimum", ("29999", "0", "0", "29999"),
         this_month="29999", currency="JPY"),
    case(PaymentStatus.PAY, "currency-without-a-minimum", ("0.01", "0.01", "0", "0"),
         this_month="0.01", currency="CHF"),
    case(PaymentStatus.PAY, "brought-forward-reaches-the-minimum", ("250", "250", "0", "0"),
         this_month="100", earlier="150"),
    case(PaymentStatus.PAY, "brought-forward-alone-is-paid", ("250", "250", "0", "0"),
         earlier="250"),
    case(PaymentStatus.BELOW_MINIMUM, "earlier-proposed-order-is-not-owed-twice",
         ("100", "0", "0", "100"), this_month="100", earlier="300", proposed=("300", "0")),
    case(PaymentStatus.BELOW_MINIMUM, "earlier-released-payment-is-not-owed-twice",
         ("100", "0", "0", "100"), this_month="100", earlier="300", released="300"),
    case(PaymentStatus.PAY, "profile-Enrolled", ("300", "300", "0", "0"),
         this_month="300", profile=("Enrolled", None)),
    case(PaymentStatus.PAY, "profile-Enrolled-with-an-old-date", ("300", "300", "0", "0"),
         this_month="300", profile=("Enrolled", PAST_HOLD)),
    case(PaymentStatus.HELD_PROFILE, "account-not-in-the-file", ("300", "0", "0", "300"),
         this_month="300", profile=None),
    case(PaymentStatus.HELD_PROFILE, "Action-required-today", ("300", "0", "0", "300"),
         this_month="300", profile=(ACTION, PAY_DAY)),
    case(PaymentStatus.HELD_PROFILE, "payment_date-exactly-since-plus-hold_days",
         ("300", "0", "0", "300"), this_month="300", profile=(ACTION, WITHIN_HOLD)),
    case(PaymentStatus.HELD_PROFILE, "before-BELOW_MINIMUM", ("50", "0", "0", "50"),
         this_month="50", profile=(ACTION, WITHIN_HOLD)),
    case(PaymentStatus.FORFEITED, "one-day-past-hold_days", ("300", "0", "300", "0"),
         this_month="300", profile=(ACTION, PAST_HOLD)),
    case(PaymentStatus.FORFEITED, "takes-the-whole-owed-brought-forward-included",
         ("250", "0", "250", "0"), this_month="100", earlier="150", profile=(ACTION, PAST_HOLD)),
    case(PaymentStatus.FORFEITED, "before-BELOW_MINIMUM", ("50", "0", "50", "0"),
         this_month="50", profile=(ACTION, PAST_HOLD)),
    case(PaymentStatus.FORFEITED, "again-after-an-earlier-forfeit", ("100", "0", "100", "0"),
         this_month="100", earlier="300", released="300", profile=(ACTION, PAST_HOLD)),
    case(PaymentStatus.RECOVERING, "more-released-than-now-owed", ("-50", "0", "0", "-50"),
         earlier="250", released="300"),
    case(PaymentStatus.RECOVERING, "this-month-does-not-cover-the-fall", ("-20", "0", "0", "-20"),
         this_month="30", earlier="250", released="300"),
    case(PaymentStatus.RECOVERING, "before-FORFEITED", ("-50", "0", "0", "-50"),
         earlier="250", released="300", profile=(ACTION, PAST_HOLD)),
    case(PaymentStatus.NOTHING_DUE, "this-month-recovers-exactly-the-fall", ("0", "0", "0", "0"),
         this_month="50", earlier="250", released="300"),
    case(PaymentStatus.NOTHING_DUE, "before-HELD_PROFILE", ("0", "0", "0", "0"),
         this_month="50", earlier="250", released="300", profile=None),
    case(PaymentStatus.PAY, "after-the-fall-is-recovered", ("350", "350", "0", "0"),
         this_month="400", earlier="250", released="300"),
]  # fmt: skip


@pytest.mark.parametrize(("account", "status", "expected"), STATUS_CASES)
def test_status_of_an_account(
    account: dict[str, Any], status: PaymentStatus, expected: tuple[str, str, str, str]
) -> None:
    rows = one_account(**account)
    assert rows.height == 1
    row = rows.row(0, named=True)
    owed, order, forfeit, carried = map(D, expected)
    assert row["status"] == status.value
    assert (row["owed"], row["order_amount"], row["forfeit_amount"], row["carried_amount"]) == (
        owed,
        order,
        forfeit,
        carried,
    )
    assert row["brought_forward"] == owed - row["payable_this_month"]
    assert row["order_amount"] >= 0  # never a negative payment
    currency = account.get("currency", "USD")
    pays = status == PaymentStatus.PAY
    assert row["payment_id"] == (f"20260515-{MPN}-{currency}" if pays else None)


def test_every_status_has_a_case_and_the_rules_keep_their_order() -> None:
    assert {c.values[1] for c in STATUS_CASES} == set(PaymentStatus)
    assert [rule.status for rule in PAYMENT_RULES] == [
        PaymentStatus.RECOVERING,
        PaymentStatus.NOTHING_DUE,
        PaymentStatus.FORFEITED,
        PaymentStatus.HELD_PROFILE,
        PaymentStatus.BELOW_MINIMUM,
    ]
    assert all(rule.applies.__doc__ for rule in PAYMENT_RULES)


def test_a_minimum_of_the_rules_file_is_used() -> None:
    rules = b.settings(minimum_payment={"USD": D("500.00")})
    rows = statements(payable=[(MPN, "USD", MONTH, D("300"))], settings=rules)
    assert rows.item(0, "status") == PaymentStatus.BELOW_MINIMUM.value
    rows = statements(payable=[(MPN, "EUR", MONTH, D("1"))], settings=rules)
    assert rows.item(0, "status") == PaymentStatus.PAY.value  # EUR no longer has a minimum


@pytest.mark.parametrize(
    ("hold_days", "status"),
    [
        pytest.param(0, PaymentStatus.FORFEITED, id="FORFEITED-hold_days-0-a-day-after-since"),
        pytest.param(1, PaymentStatus.HELD_PROFILE, id="HELD_PROFILE-hold_days-1"),
    ],
)
def test_hold_days_of_the_rules_file(hold_days: int, status: PaymentStatus) -> None:
    since = PAY_DAY - timedelta(days=1)
    rows = statements(
        payable=[(MPN, "USD", MONTH, D("300"))],
        profiles=[(MPN, ACTION, since)],
        settings=b.settings(hold_days=hold_days),
    )
    assert rows.item(0, "status") == status.value


# --- Which accounts get a row, and how it reads ---------------------------------------------


def test_accounts_with_nothing_owed_and_nothing_payable_get_no_row() -> None:
    rows = statements(
        payable=[
            ("1000001", "USD", EARLIER, D("300")),  # paid in full before
            ("1000002", "USD", MONTH, D("0")),  # a held plan this month
            ("1000003", "USD", "2026-05", D("900")),  # a later month: not this batch's
        ],
        released=[("1000001", "USD", D("300"))],
    )
    assert rows.is_empty()
    assert rows.columns == list(STATEMENT_COLUMNS)


def test_statement_columns_types_and_order() -> None:
    rows = statements(
        payable=[
            ("2000001", "USD", MONTH, D("300")),
            ("1000001", "JPY", MONTH, D("150000")),
            ("1000001", "EUR", MONTH, D("10")),
            ("1000001", "EUR", MONTH, D("5.50")),  # two plans of one account
        ],
    )
    assert rows.columns == list(STATEMENT_COLUMNS)
    assert rows.select("mpn_id", "currency").rows() == [
        ("1000001", "EUR"),
        ("1000001", "JPY"),
        ("2000001", "USD"),
    ]
    money = STATEMENT_COLUMNS[5:11]
    assert all(rows.schema[name] == MONEY for name in money)
    assert rows.schema["payment_date"] == pl.Date
    first = rows.row(0, named=True)
    assert (first["run_id"], first["earning_month"], first["payment_date"]) == (
        RUN_ID,
        MONTH,
        PAY_DAY,
    )
    assert (first["payable_this_month"], first["status"]) == (D("15.50"), "BELOW_MINIMUM")


LARGEST = "9999999999999999.99"  # the largest Decimal(18, 2) amount
HALF = "5000000000000000.00"

# (payable rows of one account, released, proposed, the figures that do not fit).
BEYOND_CASES = [
    pytest.param([(EARLIER, LARGEST)], [], [], [], id="largest-fits"),
    pytest.param([(EARLIER, HALF), (MONTH, HALF)], [], [], [("owed", "10000000000000000.00")],
                 id="owed-one-cent-beyond"),
    pytest.param([(EARLIER, LARGEST), (MONTH, LARGEST)], [LARGEST], [], [],
                 id="sum-beyond-balance-fits-after-release"),
    pytest.param([(EARLIER, LARGEST), (MONTH, LARGEST)], [], [LARGEST], [],
                 id="sum-beyond-balance-fits-after-proposed"),
    pytest.param([(EARLIER, HALF), (MONTH, HALF)], ["0.01"], [], [],
                 id="one-cent-released-fits"),
    pytest.param([(MONTH, HALF)], [LARGEST], ["0.01"],
                 [("brought_forward", "-10000000000000000.00")], id="brought-forward-beyond"),
]  # fmt: skip


@pytest.mark.parametrize(("payable", "released", "proposed", "beyond"), BEYOND_CASES)
def test_balances_beyond_decimal_18_2_are_found_exactly(
    payable: list[tuple[str, str]], released: list[str], proposed: list[str], beyond: list
) -> None:
    found = balances_beyond_money(
        payable=frame(PAYABLE_SCHEMA, [(MPN, "USD", m, D(a)) for m, a in payable]),
        released=frame(RELEASED_SCHEMA, [(MPN, "USD", D(a)) for a in released]),
        proposed=frame(PROPOSED_SCHEMA, [(MPN, "USD", D(a), D(0)) for a in proposed]),
        month=MONTH,
    )
    assert [
        (name, str(row[name]))
        for row in found.iter_rows(named=True)
        for name in ("owed", "brought_forward")
        if abs(row[name]) > D(LARGEST)
    ] == beyond
    assert found.select("mpn_id", "currency").rows() == [(MPN, "USD")] * bool(beyond)
    if not beyond:  # then the statement row holds the balance as it is
        rows = statement_rows(
            payable=frame(PAYABLE_SCHEMA, [(MPN, "USD", m, D(a)) for m, a in payable]),
            released=frame(RELEASED_SCHEMA, [(MPN, "USD", D(a)) for a in released]),
            proposed=frame(PROPOSED_SCHEMA, [(MPN, "USD", D(a), D(0)) for a in proposed]),
            profiles=frame(PROFILE_SCHEMA, [(MPN, "Enrolled", None)]),
            month=MONTH,
            payment_date=PAY_DAY,
            run_id=RUN_ID,
            settings=SETTINGS,
        )
        owed = sum(D(a) for _, a in payable) - sum(D(a) for a in released + proposed)
        assert rows.get_column("owed").to_list() == [owed]


OWED = {"mpn_id": pl.String, "currency": pl.String, "owed": MONEY}
OWED_CASES = [
    pytest.param([("A", "USD", "6780.25")], [("B", "USD", "6780.25")],
                 [("A", "USD", "6780.25", "0.00", "-6780.25"),
                  ("B", "USD", "0.00", "6780.25", "6780.25")], id="moved-between-accounts"),
    pytest.param([("A", "USD", "100.00"), ("A", "USD", "50.00")], [("A", "USD", "150.00")], [],
                 id="plans-of-one-account-summed-unchanged"),
    pytest.param([("A", "USD", "10.00"), ("A", "EUR", "10.00")], [("A", "USD", "10.00")],
                 [("A", "EUR", "10.00", "0.00", "-10.00")], id="an-account-gone"),
    pytest.param([("A", "USD", "5.00"), ("B", "USD", "-300.00")], [("A", "USD", "-5.00")],
                 [("B", "USD", "-300.00", "0.00", "300.00"),
                  ("A", "USD", "5.00", "-5.00", "-10.00")], id="largest-absolute-first"),
]  # fmt: skip


@pytest.mark.parametrize(("before", "after", "expected"), OWED_CASES)
def test_owed_changes_per_account(before: Rows, after: Rows, expected: Rows) -> None:
    def side(rows: Rows) -> pl.DataFrame:
        return frame(OWED, [(f"100000{m == 'B':d}", c, D(a)) for m, c, a in rows])

    changed = owed_changes(side(before), side(after), "owed")
    assert changed.rows() == [
        (f"100000{m == 'B':d}", c, D(x), D(y), D(z)) for m, c, x, y, z in expected
    ]


def batch(month: str, payable: Rows, proposed: Rows = (), released: Rows = ()) -> dict:
    """The one statement row of a batch of `month`, paid on the 15th of the month after."""
    year, number = map(int, month.split("-"))
    rows = statement_rows(
        payable=frame(PAYABLE_SCHEMA, list(payable)),
        released=frame(RELEASED_SCHEMA, list(released)),
        proposed=frame(PROPOSED_SCHEMA, list(proposed)),
        profiles=frame(PROFILE_SCHEMA, enrolled(payable, released, proposed)),
        month=month,
        payment_date=date(year + number // 12, number % 12 + 1, 15),
        run_id=RUN_ID,
        settings=SETTINGS,
    )
    assert rows.height == 1
    return rows.row(0, named=True)


def _figures(row: dict, *names: str) -> tuple:
    return tuple(row[name] for name in names)


FIGURES = ("brought_forward", "payable_this_month", "owed", "status", "order_amount")


def test_brought_forward_and_carried_across_three_batches() -> None:
    """March's 150 is below the minimum and carried; April adds 100 and pays 250 while March's
    batch is still proposed; May's 80 is carried while April's batch is still proposed."""
    payable = [(MPN, "USD", EARLIER, D("150"))]
    march = batch(EARLIER, payable)
    assert _figures(march, *FIGURES, "carried_amount") == (0, 150, 150, "BELOW_MINIMUM", 0, 150)
    payable.append((MPN, "USD", MONTH, D("100")))
    march_batch = [(MPN, "USD", march["order_amount"], march["forfeit_amount"])]
    april = batch(MONTH, payable, proposed=march_batch)
    assert _figures(april, *FIGURES, "carried_amount") == (150, 100, 250, "PAY", 250, 0)
    payable.append((MPN, "USD", "2026-05", D("80")))
    april_batch = [(MPN, "USD", april["order_amount"], april["forfeit_amount"])]
    may = batch("2026-05", payable, proposed=[*march_batch, *april_batch])
    assert _figures(may, *FIGURES, "carried_amount") == (0, 80, 80, "BELOW_MINIMUM", 0, 80)
    # Once April's batch is released, May's statement is the same: its order is in the ledger.
    released = [(MPN, "USD", april["order_amount"])]
    assert batch("2026-05", payable, proposed=march_batch, released=released) == may


def test_a_profile_of_another_partner_does_not_hold_this_one() -> None:
    rows = statements(
        payable=[("1000001", "USD", MONTH, D("300")), ("1000002", "USD", MONTH, D("300"))],
        profiles=[("1000001", "Enrolled", None), ("1000002", ACTION, PAY_DAY)],
    )
    assert rows.get_column("status").to_list() == ["PAY", "HELD_PROFILE"]


# --- payments.csv rows ----------------------------------------------------------------------


def test_payment_orders_are_the_PAY_rows_with_their_plan_count() -> None:
    payable = [
        ("1000001", "USD", MONTH, D("300")),
        ("1000002", "USD", MONTH, D("50")),  # below the minimum: no order
        ("1000003", "USD", EARLIER, D("400")),  # paid from what was brought forward
    ]
    rows = statements(payable=payable)
    payouts = pl.DataFrame(
        {
            "mpn_id": ["1000001", "1000001", "1000001", "1000002"],
            "currency": ["USD", "USD", "USD", "USD"],
            "payable_amount": [D("100"), D("200"), D("0"), D("50")],
        },
        schema={"mpn_id": pl.String, "currency": pl.String, "payable_amount": MONEY},
    )
    orders = payment_orders(rows, payouts)
    assert orders.columns == list(PAYMENT_ORDER_COLUMNS)
    assert orders.rows() == [
        ("20260515-1000001-USD", "1000001", "USD", PAY_DAY, D("300"), 2),
        ("20260515-1000003-USD", "1000003", "USD", PAY_DAY, D("400"), 0),
    ]


AMOUNT_TEXT_CASES = [
    pytest.param("10000", "USD", "10000.00", id="USD-two-digits"),
    pytest.param("0.5", "USD", "0.50", id="USD-a-half"),
    pytest.param("150000", "JPY", "150000", id="JPY-no-digits"),
    pytest.param("30000", "KRW", "30000", id="KRW-no-digits"),
    pytest.param("9999999999999999.99", "EUR", "9999999999999999.99", id="largest-Decimal(18,2)"),
    pytest.param("-50", "USD", "-50.00", id="negative-USD"),
    pytest.param("-50", "JPY", "-50", id="negative-JPY"),
    pytest.param("12.34", "XYZ", "12.34", id="unknown-currency-keeps-two-digits"),
    pytest.param("1500.50", "JPY", "1500.50", id="JPY-fraction-is-never-rounded-away"),
]


@pytest.mark.parametrize(("amount", "currency", "text"), AMOUNT_TEXT_CASES)
def test_amount_text(amount: str, currency: str, text: str) -> None:
    amounts = pl.DataFrame(
        {"amount": [D(amount)], "currency": [currency]},
        schema={"amount": MONEY, "currency": pl.String},
    )
    result = amounts.select(amount_text(pl.col("amount"), pl.col("currency"), SETTINGS))
    assert result.item() == text


def test_amount_text_of_a_one_digit_currency() -> None:
    rules = b.settings(currencies={"XOO": 1})
    amounts = pl.DataFrame(
        {"amount": [D("12.30"), D("12.34")], "currency": ["XOO", "XOO"]},
        schema={"amount": MONEY, "currency": pl.String},
    )
    texts = amounts.select(amount_text(pl.col("amount"), pl.col("currency"), rules))
    assert texts.to_series().to_list() == ["12.3", "12.34"]


# --- Ledger rows of a release -----------------------------------------------------------------


def test_ledger_rows_are_the_PAY_and_FORFEITED_rows() -> None:
    rows = statements(
        payable=[
            ("1000001", "USD", MONTH, D("300")),
            ("1000002", "USD", MONTH, D("250")),
            ("1000003", "USD", MONTH, D("50")),
            ("1000004", "USD", EARLIER, D("100")),
        ],
        released=[("1000004", "USD", D("150"))],
        profiles=[
            ("1000001", "Enrolled", None),
            ("1000002", ACTION, PAST_HOLD),
            ("1000003", "Enrolled", None),
            ("1000004", "Enrolled", None),
        ],
    )
    assert rows.get_column("status").to_list() == [
        "PAY",
        "FORFEITED",
        "BELOW_MINIMUM",
        "RECOVERING",
    ]
    at = datetime(2026, 5, 10, 9, 30, tzinfo=UTC)
    ledger = ledger_rows(rows, "Megan Bowen", at)
    assert ledger.columns == list(LEDGER_COLUMNS)
    assert ledger.rows() == [
        ("20260515-1000001-USD", "PAYMENT", "1000001", "USD", PAY_DAY, D("300"), MONTH, RUN_ID,
         "Megan Bowen", at),
        (None, "FORFEIT", "1000002", "USD", PAY_DAY, D("250"), MONTH, RUN_ID, "Megan Bowen", at),
    ]  # fmt: skip
    assert ledger.schema["released_at"] == pl.Datetime("us", "UTC")


# --- Reconciliation -------------------------------------------------------------------------


def reconcile(
    rows: pl.DataFrame, payable: Rows, released: Rows = (), proposed: Rows = ()
) -> PaymentsReconciliation:
    return reconcile_payments(
        rows,
        payable=frame(PAYABLE_SCHEMA, list(payable)),
        released=frame(RELEASED_SCHEMA, list(released)),
        proposed=frame(PROPOSED_SCHEMA, list(proposed)),
        month=MONTH,
    )


BALANCES = {
    "payable": [
        ("1000001", "USD", MONTH, D("300")),
        ("1000001", "USD", EARLIER, D("150")),
        ("1000002", "JPY", MONTH, D("150000")),
        ("1000003", "USD", EARLIER, D("250")),
        ("1000004", "USD", MONTH, D("20")),
        ("1000005", "EUR", "2026-05", D("999")),  # a later month is not this batch's
    ],
    "released": [("1000003", "USD", D("300")), ("1000001", "USD", D("100"))],
    "proposed": [("1000001", "USD", D("0"), D("0")), ("1000002", "JPY", D("0"), D("20000"))],
}


def test_reconciliation_holds_and_reports_each_currency() -> None:
    rows = statements(**BALANCES)
    figures = reconcile(rows, **BALANCES)
    assert figures.holds
    # EUR is payable only in a later month: no figure of this batch.
    assert [c.currency for c in figures.per_currency] == ["JPY", "USD"]
    jpy, usd = figures.per_currency
    assert usd.model_dump() == {
        "currency": "USD",
        "owed": "320.00",  # 300 + 150 + 250 + 20 - 300 - 100
        "order_amount": "350.00",
        "forfeit_amount": "0.00",
        "carried_amount": "-30.00",  # 1000003 recovering 50, 1000004 below minimum 20
        "payable_to_date": "720.00",
        "ledger_amount": "400.00",
        "proposed_earlier_amount": "0.00",
        "split_holds": True,
        "balance_holds": True,
        "holds": True,
    }
    figures = ("owed", "order_amount", "carried_amount", "proposed_earlier_amount")
    assert tuple(getattr(jpy, name) for name in figures) == (
        "130000.00",
        "130000.00",
        "0.00",
        "20000.00",
    )


def _tamper_row(column: str, delta: str) -> Any:
    def change(rows: pl.DataFrame) -> pl.DataFrame:
        first = pl.int_range(pl.len()) == 0
        return rows.with_columns(
            pl.when(first).then(pl.col(column) + D(delta)).otherwise(pl.col(column)).cast(MONEY)
        )

    return change


TAMPERED = [
    pytest.param(_tamper_row("order_amount", "0.01"), "split_holds", id="order-one-cent-more"),
    pytest.param(_tamper_row("carried_amount", "-1"), "split_holds", id="carried-one-less"),
    pytest.param(
        lambda rows: _tamper_row("carried_amount", "5")(_tamper_row("owed", "5")(rows)),
        "balance_holds",
        id="owed-and-carried-both-raised",
    ),
    pytest.param(
        lambda rows: rows.filter(pl.col("mpn_id") != "1000004"),
        "balance_holds",
        id="a-statement-row-left-out",
    ),
    pytest.param(
        lambda rows: pl.concat([rows, rows.filter(pl.col("mpn_id") == "1000001")]),
        "balance_holds",
        id="a-statement-row-twice",
    ),
]


@pytest.mark.parametrize(("tamper", "fails"), TAMPERED)
def test_reconciliation_fails_when_a_figure_is_tampered(tamper: Any, fails: str) -> None:
    rows = tamper(statements(**BALANCES))
    figures = reconcile(rows, **BALANCES)
    assert not figures.holds
    assert not all(getattr(c, fails) for c in figures.per_currency)


def test_reconciliation_counts_rows_whose_own_figures_do_not_add_up() -> None:
    rows = _tamper_row("brought_forward", "1")(statements(**BALANCES))
    figures = reconcile(rows, **BALANCES)
    assert all(c.holds for c in figures.per_currency)  # the sums do not see it
    assert figures.statement_rows_unbalanced == 1
    assert not figures.holds


# --- Property: the rules against a plain reading, over generated balances --------------------

PARTNERS = ["1000001", "1000002", "1000003", "1000004"]
CURRENCIES = {"USD": 2, "JPY": 0, "CHF": 2}
MONTHS = ["2026-01", "2026-02", EARLIER, MONTH, "2026-05"]


UNITS = {"USD": D("25"), "JPY": D("2500"), "CHF": D("0.01")}  # minimum: 8, 12 and 0 units


def _amount(currency: str) -> st.SearchStrategy[Decimal]:
    """Whole units, so that balances often cancel or meet the minimum exactly; now and then a
    smallest step more (a cent, a yen)."""
    step = D(1).scaleb(-CURRENCIES[currency])
    return st.tuples(st.integers(0, 16), st.sampled_from([0, 0, 0, 1])).map(
        lambda t: t[0] * UNITS[currency] + t[1] * step
    )


@st.composite
def balances(draw: st.DrawFn) -> dict[str, Any]:
    def rows(make: Any, most: int) -> Rows:
        return draw(st.lists(make(), max_size=most))

    account = st.tuples(st.sampled_from(PARTNERS), st.sampled_from(sorted(CURRENCIES)))

    def payable() -> st.SearchStrategy[tuple]:
        return account.flatmap(
            lambda a: st.tuples(st.just(a), st.sampled_from(MONTHS), _amount(a[1]))
        ).map(lambda t: (*t[0], t[1], t[2]))

    def released() -> st.SearchStrategy[tuple]:
        return account.flatmap(lambda a: _amount(a[1]).map(lambda x: (*a, x)))

    def proposed() -> st.SearchStrategy[tuple]:
        return account.flatmap(
            lambda a: st.tuples(_amount(a[1]), _amount(a[1])).map(lambda x: (*a, *x))
        )

    # The days around the end of the hold, and one long before.
    since = st.sampled_from([PAST_HOLD, WITHIN_HOLD, PAY_DAY, PAY_DAY - 2 * HOLD])
    profile = st.one_of(
        st.tuples(st.just("Enrolled"), st.none()),
        st.tuples(st.just(ACTION), since),
    )
    listed = draw(st.lists(st.sampled_from(PARTNERS), unique=True))
    profiles = draw(st.tuples(*(profile for _ in listed)))
    payable_rows = rows(payable, 10)
    released_rows = rows(released, 2)
    proposed_rows = rows(proposed, 2)
    # Some released amounts are exactly a payable amount, so that balances often cancel.
    paid_out = [(mpn, currency, amount) for mpn, currency, _, amount in payable_rows]
    released_rows += draw(st.lists(st.sampled_from(paid_out), max_size=2)) if paid_out else []
    # And some accounts were paid or proposed all they are owed up to M: nothing is due.
    due: dict[tuple, Decimal] = {}
    for mpn, currency, month, amount in payable_rows:
        if month <= MONTH:
            due[mpn, currency] = due.get((mpn, currency), D(0)) + amount
    for mpn, currency, amount in released_rows:
        due[mpn, currency] = due.get((mpn, currency), D(0)) - amount
    for mpn, currency, order, forfeit in proposed_rows:
        due[mpn, currency] = due.get((mpn, currency), D(0)) - order - forfeit
    settled = draw(st.sets(st.sampled_from(sorted(due)), max_size=2)) if due else set()
    released_rows += [(*key, due[key]) for key in sorted(settled) if due[key] > 0]
    return {
        "payable": payable_rows,
        "released": released_rows,
        "proposed": proposed_rows,
        "profiles": [(mpn, *p) for mpn, p in zip(listed, profiles, strict=True)],
    }


def expected_rows(data: dict[str, Any], settings: RuleSettings) -> dict[tuple, tuple]:
    """(mpn_id, currency) -> (owed, status), read from the rules in plain Python."""
    owed: dict[tuple, Decimal] = {}
    this_month: dict[tuple, Decimal] = {}
    for mpn, currency, month, amount in data["payable"]:
        if month <= MONTH:
            owed[mpn, currency] = owed.get((mpn, currency), D(0)) + amount
        if month == MONTH:
            this_month[mpn, currency] = this_month.get((mpn, currency), D(0)) + amount
    for mpn, currency, amount in data["released"]:
        owed[mpn, currency] = owed.get((mpn, currency), D(0)) - amount
    for mpn, currency, order, forfeit in data["proposed"]:
        owed[mpn, currency] = owed.get((mpn, currency), D(0)) - order - forfeit
    profiles = {row[0]: row[1:] for row in data["profiles"]}
    result = {}
    for key, amount in owed.items():
        if amount == 0 and this_month.get(key, D(0)) == 0:
            continue
        status_, since = profiles.get(key[0], (None, None))
        if amount < 0:
            status = "RECOVERING"
        elif amount == 0:
            status = "NOTHING_DUE"
        elif status_ == ACTION and since + timedelta(days=settings.hold_days) < PAY_DAY:
            status = "FORFEITED"
        elif status_ == ACTION or status_ is None:
            status = "HELD_PROFILE"
        elif amount < settings.minimum_payment.get(key[1], Decimal(0)):
            status = "BELOW_MINIMUM"
        else:
            status = "PAY"
        result[key] = (amount, status)
    return result


@given(balances())
def test_statement_rows_follow_the_rules_and_reconcile(data: dict[str, Any]) -> None:
    rows = statements(**data)
    found = {
        (r["mpn_id"], r["currency"]): (r["owed"], r["status"]) for r in rows.iter_rows(named=True)
    }
    assert found == expected_rows(data, SETTINGS)
    assert rows.filter(pl.col("order_amount") < 0).is_empty()  # never a negative payment
    assert rows.filter(pl.col("forfeit_amount") < 0).is_empty()
    assert reconcile(rows, **{k: data[k] for k in ("payable", "released", "proposed")}).holds
