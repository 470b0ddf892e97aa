"""Routing of each in-scope earnings row to a plan or one exception (docs/payouts.md, "In scope,
and routing")."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from coop_rules.integrity import OK
from coop_rules.routing import (
    ROUTE,
    match_plans,
    reaches_plan,
    route_code,
    route_codes,
    route_earnings,
    routing_table,
)
from coop_rules.vocabulary import ROW_NUMBER, Code, Dataset
from flows.stages.validate import check_references
from tests.coop_rules import builders as b

D = Decimal
FY25_PLAN = b.plan(
    plan_id="CP25-0001",
    period="FY25",
    created_on="2024-07-15",
    first_submitted_on="2024-07-29",
    last_submitted_on="2024-07-29",
)

# Each case: the run's datasets (the earnings row is ERN-0001 unless given) and the code the
# earnings row gets, or None when it reaches the plan CP26-0001.
ROUTING_CASES = [
    pytest.param(
        {"earnings": [b.earning(program="Surface Co-op")]},
        Code.NO_PROGRAM_PERIOD,
        id="NO_PROGRAM_PERIOD-program-not-in-programs",
    ),
    pytest.param(
        {"programs": [b.fy25()], "plans": [FY25_PLAN], "limits": []},
        Code.NO_PROGRAM_PERIOD,
        id="NO_PROGRAM_PERIOD-retired-program-no-period-holds-first-day",
    ),
    pytest.param(
        {"programs": [b.program(period_start="2026-04-02")]},
        Code.NO_PROGRAM_PERIOD,
        id="NO_PROGRAM_PERIOD-period-starts-after-first-day-of-M",
    ),
    pytest.param(
        {"programs": [b.program(period_end="2026-03-31")]},
        Code.NO_PROGRAM_PERIOD,
        id="NO_PROGRAM_PERIOD-period-ends-before-first-day-of-M",
    ),
    pytest.param(
        {"programs": [b.program(period_end="2025-06-30")]},
        Code.NO_PROGRAM_PERIOD,
        id="NO_PROGRAM_PERIOD-only-period-is-a-row-exception",
    ),
    pytest.param(
        {
            "programs": [b.program(period_start="2026-04-01")],
            "plans": [
                b.plan(
                    created_on="2026-04-01", first_submitted_on="2026-04-01", last_submitted_on=None
                )
            ],
        },
        None,
        id="routed-period-starts-on-first-day-of-M",
    ),
    pytest.param(
        {"programs": [b.program(period_end="2026-04-01")]},
        None,
        id="routed-period-ends-on-first-day-of-M",
    ),
    pytest.param(
        {"earnings": [b.earning(fund="Demand Generation")]},
        Code.NO_PLAN,
        id="NO_PLAN-other-fund",
    ),
    pytest.param(
        {"earnings": [b.earning(mpn_id="7912345")]},
        Code.NO_PLAN,
        id="NO_PLAN-partner-without-plan",
    ),
    pytest.param(
        {"earnings": [b.earning(mpn_id="04412907")]},
        Code.NO_PLAN,
        id="NO_PLAN-mpn_id-leading-zero-is-another-partner",
    ),
    pytest.param(
        {"programs": [b.fy25(), b.program()], "plans": [FY25_PLAN], "limits": []},
        Code.NO_PLAN,
        id="NO_PLAN-partner-has-only-a-plan-of-another-period",
    ),
    pytest.param(
        {"plans": [b.plan(), b.plan(plan_id="CP26-0002")]},
        Code.DUPLICATE_PLAN,
        id="DUPLICATE_PLAN",
    ),
    pytest.param(
        {"plans": [b.plan(), b.plan(plan_id="CP26-0002", status="Pending approval")]},
        Code.DUPLICATE_PLAN,
        id="DUPLICATE_PLAN-before-PLAN_INVALID",
    ),
    pytest.param(
        {"plans": [b.plan(status="Pending approval")]},
        Code.PLAN_INVALID,
        id="PLAN_INVALID-plan-status-invalid",
    ),
    pytest.param(
        {"plans": [b.plan(first_submitted_on=None, last_submitted_on=None)]},
        Code.PLAN_INVALID,
        id="PLAN_INVALID-plan-MISSING_VALUE",
    ),
    pytest.param(
        {"plans": [b.plan(last_submitted_on="2025-07-20")]},
        Code.PLAN_INVALID,
        id="PLAN_INVALID-plan-INCONSISTENT_DATES",
    ),
    pytest.param(
        {"plans": [b.plan(currency="XYZ")]},
        Code.PLAN_INVALID,
        id="PLAN_INVALID-before-CURRENCY_MISMATCH",
    ),
    pytest.param(
        {"plans": [b.plan(), b.other_plan(plan_id="CP26-0001")]},
        Code.PLAN_INVALID,
        id="PLAN_INVALID-plan_id-DUPLICATE_KEY",
    ),
    pytest.param(
        {"earnings": [b.earning(currency="EUR")]},
        Code.CURRENCY_MISMATCH,
        id="CURRENCY_MISMATCH",
    ),
    pytest.param({}, None, id="routed"),
]


@pytest.mark.parametrize(("case", "code"), ROUTING_CASES)
def test_routing(case: dict, code: Code | None) -> None:
    result = b.run(**case)
    found = result.exceptions.filter(pl.col("source") == Dataset.EARNINGS.value)
    if code is None:
        assert found.is_empty()
        assert b.payout(result)["earnings_count"] == 1
        return
    # Exactly one place: one exception for the row, with its amount, and no payout row.
    earning = (case.get("earnings") or [b.earning()])[0]
    assert found.select("row_number", "record_key", "code", "amount", "currency").rows() == [
        (1, earning["earning_id"], code.value, D(earning["amount"]), earning["currency"])
    ]
    assert found.get_column("message")[0]
    assert result.payouts.is_empty()
    assert result.reconciliation.holds


def test_schema_exception_comes_before_routing() -> None:
    """An invalid row gets its schema code only: it takes no further part."""
    result = b.run(earnings=[b.earning(mpn_id="12AB", program="Surface Co-op")])
    assert b.problems(result, Dataset.EARNINGS) == [
        ("earnings", 1, Code.INVALID_VALUE.value, "mpn_id", "12AB")
    ]
    assert result.payouts.is_empty()


def test_every_in_scope_row_ends_in_exactly_one_place() -> None:
    earnings = [
        b.earning(earning_id="E1", amount="100.00"),
        b.earning(earning_id="E2", amount="-40.00"),
        b.earning(earning_id="E3", amount="7.00", program="Surface Co-op"),
        b.earning(earning_id="E4", amount="8.00", fund="Training"),
        b.earning(earning_id="E5", amount="9.00", currency="EUR"),
        b.earning(earning_id="E6", amount="12.345"),
        b.earning(earning_id="E7", amount="NaN", mpn_id="44129O7"),
        b.earning(earning_id="E8", amount="5.00", earning_month="2026-03"),
    ]
    result = b.run(earnings=earnings)
    recon = result.reconciliation
    assert (recon.in_scope_rows, recon.routed_rows, recon.exception_rows) == (7, 2, 5)
    assert recon.holds
    per_currency = {c.currency: c for c in recon.per_currency}
    assert per_currency["USD"].input_amount == "75.00"
    assert per_currency["USD"].earned_amount == "60.00"
    assert per_currency["USD"].exception_amount == "15.00"
    assert per_currency["EUR"].exception_amount == "9.00"
    codes = result.exceptions.filter(pl.col("source") == "earnings").get_column("code")
    assert sorted(codes) == sorted(
        [
            Code.NO_PROGRAM_PERIOD,
            Code.NO_PLAN,
            Code.CURRENCY_MISMATCH,
            Code.INVALID_AMOUNT,
            Code.INVALID_VALUE,
            Code.INVALID_VALUE,
        ]
    )


def test_joining_on_the_key_hash_routes_as_the_four_text_keys_do() -> None:
    """Plan keys are joined on one exact packed integer (mpn_id, program and fund codes), else
    on one hash of the four columns and then compared column by column; the plain four-column
    join (used if two plan keys ever share a hash) agrees with both."""
    text = b.inputs(
        plans=[
            b.plan(),
            b.plan(plan_id="CP26-0002", mpn_id="5550001"),
            b.plan(plan_id="CP26-0003", mpn_id="5550001"),
            b.plan(plan_id="CP26-0004", mpn_id="5550002", currency="EUR"),
        ],
        earnings=[
            b.earning(earning_id="E-1"),
            b.earning(earning_id="E-2", mpn_id="5550001"),
            b.earning(earning_id="E-3", mpn_id="5550002"),
            b.earning(earning_id="E-4", mpn_id="9999999"),
            b.earning(earning_id="E-5", program="Surface Co-op"),
            b.earning(earning_id="E-6", fund="Other"),
            # The same number with a leading zero is another mpn_id.
            b.earning(earning_id="E-7", mpn_id="05550002", currency="EUR"),
        ],
    )
    references = check_references(text, b.settings())
    table = routing_table(
        references.frames[Dataset.PROGRAMS], references.frames[Dataset.PLANS], date(2026, 4, 1)
    )
    assert table.hashed
    earnings = text[Dataset.EARNINGS]
    assert earnings is not None
    chunk = earnings.with_columns(pl.lit(True).alias(OK)).lazy()
    assert table.packed is not None
    packed = route_earnings(chunk, table).collect().sort(ROW_NUMBER)
    hashed = route_earnings(chunk, replace(table, packed=None)).collect().sort(ROW_NUMBER)
    plain = (
        route_earnings(chunk, replace(table, packed=None, hashed=False)).collect().sort(ROW_NUMBER)
    )
    assert hashed.equals(plain.select(hashed.columns))
    assert packed.equals(plain.select(packed.columns))
    # As the streaming queries take them: the join in any order, the codes made afterwards
    # (the packed join adds the period then), whether a row reaches its plan from the join.
    for variant in (table, replace(table, packed=None), replace(table, packed=None, hashed=False)):
        matched = match_plans(chunk, variant, keep_order=False)
        streamed = (
            route_codes(matched.with_columns(reaches_plan().alias("reaches")), variant)
            .collect(engine="streaming")
            .sort(ROW_NUMBER)
        )
        assert streamed.select(plain.columns).equals(plain)
        assert streamed.get_column("reaches").to_list() == (
            plain.select(pl.col(OK) & pl.col(ROUTE).is_null()).to_series().to_list()
        )
    assert hashed.get_column(ROUTE).to_list() == [
        None,
        Code.DUPLICATE_PLAN.value,
        Code.CURRENCY_MISMATCH.value,
        Code.NO_PLAN.value,
        Code.NO_PROGRAM_PERIOD.value,
        Code.NO_PLAN.value,
        Code.NO_PLAN.value,
    ]


def test_reaches_plan_is_true_exactly_where_no_routing_code_applies() -> None:
    """The streaming queries tell every row only whether it reaches its plan (`reaches_plan`)
    and make codes for the others: the two must agree on every combination, nulls included
    (a row that matched a plan key has its program's period)."""
    combinations = [
        {
            OK: ok,
            "period": None if rows is None and not has_period else "FY26",
            "__plan_rows": rows,
            "__plan_ok": plan_ok,
            "currency": "USD",
            "__plan_currency": plan_currency,
        }
        for ok, rows, has_period, plan_ok, plan_currency in itertools.product(
            [True, False],
            [None, 1, 2],
            [True, False],
            [True, False, None],
            ["USD", "EUR", None],
        )
    ]
    frame = pl.DataFrame(
        combinations,
        schema={
            OK: pl.Boolean,
            "period": pl.String,
            "__plan_rows": pl.UInt32,
            "__plan_ok": pl.Boolean,
            "currency": pl.String,
            "__plan_currency": pl.String,
        },
    )
    verdicts = frame.select(
        reaches_plan().alias("reaches"),
        (pl.col(OK) & route_code().is_null()).alias("no_code"),
    )
    assert verdicts.get_column("reaches").null_count() == 0
    assert verdicts.get_column("reaches").to_list() == verdicts.get_column("no_code").to_list()
    # Valid, one plan row, plan valid or unknown, same or unknown plan currency (twice over:
    # `has_period` does not change a row that matched a plan).
    assert verdicts.get_column("reaches").sum() == 8
