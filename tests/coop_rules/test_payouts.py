"""The plan rules, the limit in force and the cap of a payout row (docs/payouts.md)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coop_rules import payouts
from coop_rules.money import MONEY
from coop_rules.vocabulary import Outcome, Reason
from tests.coop_rules import builders as b

PAY, HELD, NOT_PAYABLE = Outcome.PAY, Outcome.HELD, Outcome.NOT_PAYABLE
D = Decimal
BASES = ["cumulative", "monthly"]
NO_LIMIT_ROW: list = []

# ---------------------------------------------------------------------------------------------
# The ordered plan rules: one case per rule of the table in docs/payouts.md (period FY26 is
# 2025-07-01 to 2026-06-30, so the grace of 90 days ends on 2026-09-28).

PLAN_RULE_CASES = [
    pytest.param(
        {"plan": b.plan(created_on="2025-06-30")},
        NOT_PAYABLE,
        Reason.OUTSIDE_PROGRAM_YEAR,
        id="OUTSIDE_PROGRAM_YEAR-created_on-day-before-period_start",
    ),
    pytest.param(
        {
            "plan": b.plan(
                status="Editing",
                created_on="2026-07-01",
                first_submitted_on=None,
                last_submitted_on=None,
            )
        },
        NOT_PAYABLE,
        Reason.OUTSIDE_PROGRAM_YEAR,
        id="OUTSIDE_PROGRAM_YEAR-created_on-day-after-period_end",
    ),
    pytest.param(
        {"plan": b.plan(first_submitted_on="2026-07-03", last_submitted_on="2026-07-03")},
        NOT_PAYABLE,
        Reason.OUTSIDE_PROGRAM_YEAR,
        id="OUTSIDE_PROGRAM_YEAR-first_submitted_on-after-period_end",
    ),
    pytest.param(
        {
            "plan": b.plan(
                created_on="2025-07-01",
                first_submitted_on="2026-06-30",
                last_submitted_on="2026-06-30",
            )
        },
        PAY,
        None,
        id="PAY-dates-on-period_start-and-period_end-are-inside",
    ),
    pytest.param(
        {"plan": b.plan(status="Editing", first_submitted_on=None, last_submitted_on=None)},
        HELD,
        Reason.PLAN_NOT_APPROVED,
        id="OUTSIDE_PROGRAM_YEAR-empty-first_submitted_on-never-outside",
    ),
    pytest.param(
        {"plan": b.plan(last_submitted_on=None)},
        PAY,
        None,
        id="RESUBMITTED_AFTER_GRACE-empty-last_submitted_on-never-late",
    ),
    pytest.param(
        {"plan": b.plan(last_submitted_on="2026-09-29")},
        NOT_PAYABLE,
        Reason.RESUBMITTED_AFTER_GRACE,
        id="RESUBMITTED_AFTER_GRACE-period_end-plus-91-days",
    ),
    pytest.param(
        {"plan": b.plan(last_submitted_on="2026-09-28")},
        PAY,
        None,
        id="RESUBMITTED_AFTER_GRACE-boundary-period_end-plus-90-days-pays",
    ),
    pytest.param(
        {
            "plan": b.plan(last_submitted_on="2026-07-01"),
            "rules": b.settings(resubmission_grace_days=0),
        },
        NOT_PAYABLE,
        Reason.RESUBMITTED_AFTER_GRACE,
        id="RESUBMITTED_AFTER_GRACE-grace-days-from-the-rules",
    ),
    pytest.param(
        {"plan": b.plan(status="Rejected")},
        NOT_PAYABLE,
        Reason.PLAN_REJECTED,
        id="PLAN_REJECTED",
    ),
    *[
        pytest.param(
            {"plan": b.plan(status=status)},
            HELD,
            Reason.PLAN_NOT_APPROVED,
            id=f"PLAN_NOT_APPROVED-{status.replace(' ', '_')}",
        )
        for status in ("Submitted", "Under review", "Action required", "Editing")
    ],
    pytest.param(
        {
            "plan": b.plan(status="Editing", first_submitted_on=None, last_submitted_on=None),
        },
        HELD,
        Reason.PLAN_NOT_APPROVED,
        id="PLAN_NOT_APPROVED-Editing-never-submitted",
    ),
    pytest.param(
        {
            "plans": [b.plan(), b.other_plan()],
            "campaigns": [b.campaign(plan_id="CP26-0002")],
            "activities": [b.activity()],
        },
        HELD,
        Reason.NO_ACTIVITY,
        id="NO_ACTIVITY-no-campaign",
    ),
    pytest.param(
        {"campaigns": [b.campaign()], "activities": []},
        HELD,
        Reason.NO_ACTIVITY,
        id="NO_ACTIVITY-campaign-without-activity",
    ),
    pytest.param(
        {"campaigns": [b.campaign()], "activities": None},
        HELD,
        Reason.NO_ACTIVITY,
        id="NO_ACTIVITY-campaigns-given-activities-absent",
    ),
    pytest.param(
        {"campaigns": [b.campaign()], "activities": [b.activity(countries="United States")]},
        HELD,
        Reason.NO_ACTIVITY,
        id="NO_ACTIVITY-only-activity-is-a-row-exception",
    ),
    pytest.param(
        {
            "campaigns": [b.campaign(), b.campaign()],
            "activities": [b.activity()],
        },
        HELD,
        Reason.NO_ACTIVITY,
        id="NO_ACTIVITY-only-campaign-is-a-row-exception",
    ),
    pytest.param(
        {"campaigns": [b.campaign()], "activities": [b.activity()]},
        PAY,
        None,
        id="PAY-with-an-activity",
    ),
    pytest.param(
        {"campaigns": None, "activities": None},
        PAY,
        None,
        id="PAY-no-activity-check-without-campaigns-and-activities",
    ),
    pytest.param({"limits": []}, HELD, Reason.NO_LIMIT, id="NO_LIMIT-no-limit-row"),
    pytest.param(
        {"limits": [b.limit(effective_month="2026-05")]},
        HELD,
        Reason.NO_LIMIT,
        id="NO_LIMIT-only-limit-effective-next-month",
    ),
    pytest.param(
        {"limits": [b.limit(), b.limit(limit_amount="12000.00")]},
        HELD,
        Reason.NO_LIMIT,
        id="NO_LIMIT-limit-rows-are-DUPLICATE_KEY",
    ),
    pytest.param(
        {"limits": [b.limit(limit_amount="10000.005")]},
        HELD,
        Reason.NO_LIMIT,
        id="NO_LIMIT-limit-row-is-INVALID_AMOUNT",
    ),
    pytest.param(
        {"limits": [b.limit(effective_month="2025-13")]},
        HELD,
        Reason.NO_LIMIT,
        id="NO_LIMIT-limit-row-is-INVALID_VALUE",
    ),
    pytest.param({}, PAY, None, id="PAY"),
]


@pytest.mark.parametrize(("case", "outcome", "reason"), PLAN_RULE_CASES)
def test_plan_rule(case: dict, outcome: Outcome, reason: Reason | None) -> None:
    case = dict(case)
    if "plan" in case:
        case["plans"] = [case.pop("plan")]
    row = b.payout(b.run(earnings=b.earnings("2000.00", "3000.00"), **case))
    assert (row["outcome"], row["reason"]) == (outcome.value, reason and reason.value)
    assert row["earned_amount"] == D("5000.00")
    if outcome != PAY:
        # HELD and NOT_PAYABLE: nothing payable, everything unpaid.
        assert row["payable_amount"] == D("0.00")
        assert row["unpaid_amount"] == D("5000.00")


# Rule ORDER: a plan that matches two rules gets the earlier one.
ORDER_CASES = [
    pytest.param(
        {"plan": b.plan(created_on="2025-06-30", last_submitted_on="2026-10-05")},
        Reason.OUTSIDE_PROGRAM_YEAR,
        id="OUTSIDE_PROGRAM_YEAR-before-RESUBMITTED_AFTER_GRACE",
    ),
    pytest.param(
        {"plan": b.plan(status="Rejected", created_on="2025-06-30")},
        Reason.OUTSIDE_PROGRAM_YEAR,
        id="OUTSIDE_PROGRAM_YEAR-before-PLAN_REJECTED",
    ),
    pytest.param(
        {"plan": b.plan(status="Rejected", last_submitted_on="2026-10-05")},
        Reason.RESUBMITTED_AFTER_GRACE,
        id="RESUBMITTED_AFTER_GRACE-before-PLAN_REJECTED",
    ),
    pytest.param(
        {"plan": b.plan(status="Under review", last_submitted_on="2026-10-05")},
        Reason.RESUBMITTED_AFTER_GRACE,
        id="RESUBMITTED_AFTER_GRACE-before-PLAN_NOT_APPROVED",
    ),
    pytest.param(
        {"plan": b.plan(status="Rejected"), "limits": NO_LIMIT_ROW},
        Reason.PLAN_REJECTED,
        id="PLAN_REJECTED-before-NO_LIMIT",
    ),
    pytest.param(
        {"plan": b.plan(status="Submitted"), "campaigns": [b.campaign()], "activities": []},
        Reason.PLAN_NOT_APPROVED,
        id="PLAN_NOT_APPROVED-before-NO_ACTIVITY",
    ),
    pytest.param(
        {"plan": b.plan(status="Editing"), "limits": NO_LIMIT_ROW},
        Reason.PLAN_NOT_APPROVED,
        id="PLAN_NOT_APPROVED-before-NO_LIMIT",
    ),
    pytest.param(
        {"campaigns": [b.campaign()], "activities": [], "limits": NO_LIMIT_ROW},
        Reason.NO_ACTIVITY,
        id="NO_ACTIVITY-before-NO_LIMIT",
    ),
    pytest.param(
        {
            "plan": b.plan(
                status="Rejected", created_on="2025-06-30", last_submitted_on="2026-10-05"
            ),
            "campaigns": [b.campaign()],
            "activities": [],
            "limits": NO_LIMIT_ROW,
        },
        Reason.OUTSIDE_PROGRAM_YEAR,
        id="OUTSIDE_PROGRAM_YEAR-before-every-other-rule",
    ),
]


@pytest.mark.parametrize(("case", "reason"), ORDER_CASES)
def test_first_rule_that_applies_wins(case: dict, reason: Reason) -> None:
    case = dict(case)
    if "plan" in case:
        case["plans"] = [case.pop("plan")]
    assert b.payout(b.run(**case))["reason"] == reason.value


def test_plan_rules_are_listed_in_the_order_of_the_spec() -> None:
    assert [(rule.outcome, rule.reason) for rule in payouts.PLAN_RULES] == [
        (NOT_PAYABLE, Reason.OUTSIDE_PROGRAM_YEAR),
        (NOT_PAYABLE, Reason.RESUBMITTED_AFTER_GRACE),
        (NOT_PAYABLE, Reason.PLAN_REJECTED),
        (HELD, Reason.PLAN_NOT_APPROVED),
        (HELD, Reason.NO_ACTIVITY),
        (HELD, Reason.NO_LIMIT),
    ]


# ---------------------------------------------------------------------------------------------
# The limit in force: the latest effective_month <= M.

LIMIT_CASES = [
    pytest.param(
        "2026-04",
        [("2025-07", "5000.00"), ("2026-04", "12000.00")],
        "12000.00",
        id="raise-effective-in-M-counts",
    ),
    pytest.param(
        "2026-04",
        [("2025-07", "8000.00"), ("2026-05", "20000.00")],
        "8000.00",
        id="raise-effective-after-M-not-yet",
    ),
    pytest.param(
        "2026-05",
        [("2025-07", "8000.00"), ("2026-05", "20000.00")],
        "20000.00",
        id="raise-counts-from-its-own-month",
    ),
    pytest.param(
        "2026-04",
        [
            ("2026-05", "20000.00"),
            ("2025-07", "5000.00"),
            ("2026-03", "9000.00"),
            ("2025-12", "7000.00"),
        ],
        "9000.00",
        id="latest-effective-month-whatever-the-row-order",
    ),
    pytest.param(
        "2026-04",
        [("2025-07", "9000.00"), ("2026-02", "4000.00")],
        "4000.00",
        id="a-lowered-limit-counts-too",
    ),
]


@pytest.mark.parametrize(("month", "rows", "expected"), LIMIT_CASES)
def test_limit_in_force(month: str, rows: list[tuple[str, str]], expected: str) -> None:
    limits = [b.limit(effective_month=m, limit_amount=a) for m, a in rows]
    result = b.run(month=month, limits=limits, earnings=[b.earning(earning_month=month)])
    assert b.payout(result)["limit_amount"] == D(expected)


def test_limit_in_force_function_per_plan() -> None:
    limits = pl.DataFrame(
        {
            "plan_id": ["A", "A", "A", "B", "C"],
            "effective_month": ["2026-05", "2025-07", "2026-04", "2026-05", "2025-09"],
            "limit_amount": [D("3.00"), D("1.00"), D("2.00"), D("9.00"), D("0.00")],
        },
        schema={"plan_id": pl.String, "effective_month": pl.String, "limit_amount": MONEY},
    )
    in_force = payouts.limit_in_force(limits, "2026-04").sort("plan_id")
    assert in_force.rows() == [("A", D("2.00")), ("C", D("0.00"))]


# ---------------------------------------------------------------------------------------------
# The cap, on both bases: (earned rows, limit, paid_before) -> payable, unpaid, reason.

CAP_CASES = [
    # The seed's examples hold under both bases.
    ("seed-example-1-earned-5000-limit-10000", ["2000.00", "3000.00"], "10000.00", None,
     {"cumulative": ("5000.00", "0.00", None), "monthly": ("5000.00", "0.00", None)}),
    ("seed-example-2-earned-15000-limit-10000-CAPPED", ["9000.00", "6000.00"], "10000.00", None,
     {"cumulative": ("10000.00", "5000.00", "CAPPED"),
      "monthly": ("10000.00", "5000.00", "CAPPED")}),
    ("CAPPED-one-cent-over", ["10000.01"], "10000.00", None,
     {"cumulative": ("10000.00", "0.01", "CAPPED"), "monthly": ("10000.00", "0.01", "CAPPED")}),
    ("paid_before-leaves-room-3000", ["6000.00"], "20000.00", "17000.00",
     {"cumulative": ("3000.00", "3000.00", "CAPPED"), "monthly": ("6000.00", "0.00", None)}),
    ("paid_before-above-limit-room-is-0", ["6000.00"], "20000.00", "25000.00",
     {"cumulative": ("0.00", "6000.00", "CAPPED"), "monthly": ("6000.00", "0.00", None)}),
    ("room-equals-earned-is-not-CAPPED", ["7000.00"], "12000.00", "5000.00",
     {"cumulative": ("7000.00", "0.00", None), "monthly": ("7000.00", "0.00", None)}),
    ("limit-0-CAPPED", ["1350.00"], "0.00", None,
     {"cumulative": ("0.00", "1350.00", "CAPPED"), "monthly": ("0.00", "1350.00", "CAPPED")}),
    ("NEGATIVE_NET-reversal-bigger-than-earnings", ["650.00", "-2400.00"], "15000.00", "7300.00",
     {"cumulative": ("0.00", "-1750.00", "NEGATIVE_NET"),
      "monthly": ("0.00", "-1750.00", "NEGATIVE_NET")}),
    ("no-reason-when-reversal-nets-to-zero", ["500.00", "-500.00"], "10000.00", None,
     {"cumulative": ("0.00", "0.00", None), "monthly": ("0.00", "0.00", None)}),
    ("reversals-netted-before-the-cap", ["9000.00", "4000.00", "-3500.50"], "10000.00", None,
     {"cumulative": ("9499.50", "0.00", None), "monthly": ("9499.50", "0.00", None)}),
]  # fmt: skip


@pytest.mark.parametrize("basis", BASES)
@pytest.mark.parametrize(
    ("amounts", "limit_amount", "paid_before", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CAP_CASES],
)
def test_cap(
    basis: str,
    amounts: list[str],
    limit_amount: str,
    paid_before: str | None,
    expected: dict[str, tuple[str, str, str | None]],
) -> None:
    result = b.run(
        rules=b.settings(cap_basis=basis),
        limits=[b.limit(limit_amount=limit_amount)],
        earnings=b.earnings(*amounts),
        paid_before={b.PLAN_ID: paid_before} if paid_before else None,
    )
    row = b.payout(result)
    payable, unpaid, reason = expected[basis]
    assert row["outcome"] == PAY.value
    assert row["earned_amount"] == sum(D(a) for a in amounts)
    assert row["earnings_count"] == len(amounts)
    assert row["limit_amount"] == D(limit_amount)
    assert row["paid_before_amount"] == D(paid_before or "0.00")
    assert (row["payable_amount"], row["unpaid_amount"], row["reason"]) == (
        D(payable),
        D(unpaid),
        reason,
    )
    assert row["earned_amount"] == row["payable_amount"] + row["unpaid_amount"]
    assert row["payment_date"] == date(2026, 5, 15)


@pytest.mark.parametrize("basis", BASES)
def test_seed_examples_are_paid_on_may_15(basis: str) -> None:
    """Limit 10,000: earned 5,000 in April -> 5,000 paid on May 15; earned 15,000 -> 10,000
    paid on May 15, 5,000 unpaid, CAPPED (docs/payouts.md, "The cap")."""
    plans = [b.plan(), b.other_plan()]
    limits = [b.limit(), b.limit(plan_id="CP26-0002")]
    earnings = [
        b.earning(earning_id="ERN-1", amount="5000.00"),
        b.earning(earning_id="ERN-2", amount="15000.00", mpn_id="1093384"),
    ]
    result = b.run(rules=b.settings(cap_basis=basis), plans=plans, limits=limits, earnings=earnings)
    first, second = b.payout(result, "CP26-0001"), b.payout(result, "CP26-0002")
    assert (first["payable_amount"], first["unpaid_amount"], first["reason"]) == (
        D("5000.00"),
        D("0.00"),
        None,
    )
    assert (second["payable_amount"], second["unpaid_amount"], second["reason"]) == (
        D("10000.00"),
        D("5000.00"),
        Reason.CAPPED.value,
    )
    paid = result.payouts.filter(pl.col("payable_amount") > 0).sort("mpn_id")
    assert paid.select("mpn_id", "payment_date", "payable_amount").rows() == [
        ("1093384", date(2026, 5, 15), D("10000.00")),
        ("4412907", date(2026, 5, 15), D("5000.00")),
    ]


@pytest.mark.parametrize("basis", BASES)
@pytest.mark.parametrize(
    ("plan_overrides", "limits", "outcome"),
    [
        pytest.param({"status": "Submitted"}, None, HELD, id="HELD-PLAN_NOT_APPROVED"),
        pytest.param({"status": "Rejected"}, None, NOT_PAYABLE, id="NOT_PAYABLE-PLAN_REJECTED"),
        pytest.param({}, [], HELD, id="HELD-NO_LIMIT"),
    ],
)
def test_not_paid_rows_keep_a_negative_net_unpaid(
    basis: str, plan_overrides: dict, limits: list | None, outcome: Outcome
) -> None:
    extra = {} if limits is None else {"limits": limits}
    result = b.run(
        rules=b.settings(cap_basis=basis),
        plans=[b.plan(**plan_overrides)],
        earnings=b.earnings("650.00", "-2400.00"),
        **extra,
    )
    row = b.payout(result)
    assert row["outcome"] == outcome.value
    assert (row["earned_amount"], row["payable_amount"], row["unpaid_amount"]) == (
        D("-1750.00"),
        D("0.00"),
        D("-1750.00"),
    )
    assert row["reason"] not in (Reason.CAPPED.value, Reason.NEGATIVE_NET.value)


def test_earned_is_the_exact_net_sum_of_the_months_rows_only() -> None:
    rows = [
        *b.earnings("0.10", "0.20", "0.30", "-0.05"),
        b.earning(earning_id="ERN-MAR", earning_month="2026-03", amount="999.00"),
        b.earning(earning_id="ERN-MAY", earning_month="2026-05", amount="999.00"),
    ]
    row = b.payout(b.run(earnings=rows))
    assert row["earned_amount"] == D("0.55")
    assert row["earnings_count"] == 4


def test_paid_before_of_other_plans_does_not_count() -> None:
    result = b.run(
        earnings=b.earnings("6000.00"),
        paid_before={"CP26-0002": "9999.00"},
    )
    row = b.payout(result)
    assert (row["paid_before_amount"], row["payable_amount"]) == (D("0.00"), D("6000.00"))


# ---------------------------------------------------------------------------------------------
# Payment date: day `payment_day` of the month after M.

PAYMENT_DATE_CASES = [
    pytest.param("2026-04", {}, date(2026, 5, 15), id="April-paid-May-15"),
    pytest.param("2026-12", {}, date(2027, 1, 15), id="December-paid-January-15-next-year"),
    pytest.param("2026-04", {"payment_day": 1}, date(2026, 5, 1), id="payment_day-from-rules"),
]


@pytest.mark.parametrize(("month", "overrides", "expected"), PAYMENT_DATE_CASES)
def test_payment_date(month: str, overrides: dict, expected: date) -> None:
    fy27 = b.program(period="FY27", period_start="2026-07-01", period_end="2027-06-30")
    plans = [
        b.plan(),
        b.plan(
            plan_id="CP27-0001",
            period="FY27",
            created_on="2026-07-10",
            first_submitted_on="2026-07-12",
            last_submitted_on="2026-07-12",
        ),
    ]
    limits = [b.limit(), b.limit(plan_id="CP27-0001", effective_month="2026-07")]
    result = b.run(
        month=month,
        rules=b.settings(**overrides),
        programs=[b.program(), fy27],
        plans=plans,
        limits=limits,
        earnings=[b.earning(earning_month=month)],
    )
    assert result.payouts.get_column("payment_date").to_list() == [expected]


# ---------------------------------------------------------------------------------------------
# Invariants of the cap over any amounts (hypothesis).

cents = st.integers(min_value=-(10**9), max_value=10**9).map(lambda n: Decimal(n).scaleb(-2))
non_negative_cents = st.integers(min_value=0, max_value=10**9).map(lambda n: Decimal(n).scaleb(-2))


@settings(max_examples=60, deadline=None)
@given(
    earned=cents,
    limit_amount=non_negative_cents,
    paid_before=non_negative_cents,
    basis=st.sampled_from(BASES),
)
def test_cap_invariants(
    earned: Decimal, limit_amount: Decimal, paid_before: Decimal, basis: str
) -> None:
    frame = pl.DataFrame(
        {
            "earned_amount": [earned],
            "limit_amount": [limit_amount],
            "paid_before_amount": [paid_before],
            "outcome": [PAY.value],
            "reason": [None],
        },
        schema={
            "earned_amount": MONEY,
            "limit_amount": MONEY,
            "paid_before_amount": MONEY,
            "outcome": pl.String,
            "reason": pl.String,
        },
    )
    rules = b.settings(cap_basis=basis)
    row = (
        frame.with_columns(payouts.apply_cap(rules))
        .with_columns(payouts.cap_reason().alias("reason"))
        .row(0, named=True)
    )
    payable = row["payable_amount"]
    room = limit_amount if basis == "monthly" else max(limit_amount - paid_before, Decimal(0))
    assert payable == min(max(earned, Decimal(0)), room)
    assert Decimal(0) <= payable <= limit_amount
    expected_reason = (
        Reason.NEGATIVE_NET.value
        if earned < 0
        else Reason.CAPPED.value
        if payable < earned
        else None
    )
    assert row["reason"] == expected_reason
