"""Payout rows for month M: the ordered plan rules, the limit in force and the cap
(docs/payouts.md).

One payout row per plan with routed earnings. Each rule is a named function giving the condition
under which it applies; `PLAN_RULES` lists them in the order of docs/payouts.md, "The plan
rules", and the first that applies decides the row's outcome and reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

import polars as pl
from polars.expr.whenthen import ChainedThen, Then

from coop_rules.integrity import OK
from coop_rules.money import MONEY, ZERO, to_money
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import Outcome, Reason

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

# The plan as a payout row shows it (docs/payouts.md, "Outputs: payouts and exceptions").
PLAN_IDENTITY = ("plan_id", "mpn_id", "program", "fund", "period", "market", "currency", "status")
# The plan columns the rules read.
PLAN_COLUMNS = (*PLAN_IDENTITY, "created_on", "first_submitted_on", "last_submitted_on")

PAYOUT_COLUMNS = (
    "run_id",
    "earning_month",
    "payment_date",
    *PLAN_IDENTITY,
    "earnings_count",
    "earned_amount",
    "limit_amount",
    "paid_before_amount",
    "payable_amount",
    "unpaid_amount",
    "outcome",
    "reason",
)


def outside_program_year(settings: RuleSettings) -> pl.Expr:
    """1. `created_on` or `first_submitted_on` outside [period_start, period_end]."""

    def outside(column: str) -> pl.Expr:
        day = pl.col(column)
        return ((day < pl.col("period_start")) | (day > pl.col("period_end"))).fill_null(
            False
        )  # an empty date is never outside

    return outside("created_on") | outside("first_submitted_on")


def resubmitted_after_grace(settings: RuleSettings) -> pl.Expr:
    """2. `last_submitted_on` later than period_end + `resubmission_grace_days`."""
    grace = timedelta(days=settings.resubmission_grace_days)
    return (pl.col("last_submitted_on") > pl.col("period_end") + grace).fill_null(False)


def plan_rejected(settings: RuleSettings) -> pl.Expr:
    """3. status Rejected."""
    return pl.col("status").is_in(list(settings.statuses.rejected))


def plan_not_approved(settings: RuleSettings) -> pl.Expr:
    """4. status Submitted, Under review, Action required or Editing."""
    return pl.col("status").is_in(list(settings.statuses.held))


def no_activity(settings: RuleSettings) -> pl.Expr:
    """5. campaigns/activities given, and the plan has no activity."""
    return pl.col("__activity_checked") & ~pl.col("__has_activity")


def no_limit(settings: RuleSettings) -> pl.Expr:
    """6. no `plan_limits` row with effective_month <= M."""
    return pl.col("limit_amount").is_null()


@dataclass(frozen=True)
class PlanRule:
    """One row of the ordered table of plan rules (docs/payouts.md, "The plan rules")."""

    applies: Callable[[RuleSettings], pl.Expr]
    outcome: Outcome
    reason: Reason


PLAN_RULES: tuple[PlanRule, ...] = (
    PlanRule(outside_program_year, Outcome.NOT_PAYABLE, Reason.OUTSIDE_PROGRAM_YEAR),
    PlanRule(resubmitted_after_grace, Outcome.NOT_PAYABLE, Reason.RESUBMITTED_AFTER_GRACE),
    PlanRule(plan_rejected, Outcome.NOT_PAYABLE, Reason.PLAN_REJECTED),
    PlanRule(plan_not_approved, Outcome.HELD, Reason.PLAN_NOT_APPROVED),
    PlanRule(no_activity, Outcome.HELD, Reason.NO_ACTIVITY),
    PlanRule(no_limit, Outcome.HELD, Reason.NO_LIMIT),
)


def first_rule(settings: RuleSettings, field: str) -> pl.Expr:
    """The outcome (or reason) of the first plan rule that applies; 7. otherwise PAY."""
    chain: Then | ChainedThen | None = None
    for rule in PLAN_RULES:
        value = pl.lit(getattr(rule, field).value)
        condition = rule.applies(settings)
        chain = (
            pl.when(condition).then(value) if chain is None else chain.when(condition).then(value)
        )
    fallback = pl.lit(Outcome.PAY.value) if field == "outcome" else pl.lit(None, pl.String)
    assert chain is not None
    return chain.otherwise(fallback)


def limit_in_force(limits: Frame, month: str) -> Frame:
    """The `limit_amount` of each plan's latest effective_month <= M: a raise counts from its
    month on, a raise for a later month not yet."""
    return (
        limits.filter(pl.col("effective_month") <= month)
        .sort("plan_id", "effective_month")
        .group_by("plan_id")
        .agg(pl.col("limit_amount").last())
    )


def earned_per_plan(routed: pl.LazyFrame, plan: str = "plan_id") -> pl.LazyFrame:
    """The exact net sum and count of the routed earnings of each plan (reversals netted):
    `routed` holds `plan` (the plan_id, or another column naming the plan) and `amount` of
    every earnings row routed to a plan."""
    return routed.group_by(plan).agg(
        pl.len().cast(pl.Int64).alias("earnings_count"),
        to_money(pl.col("amount").sum()).alias("earned_amount"),
    )


def apply_cap(settings: RuleSettings) -> list[pl.Expr]:
    """payable = min(max(earned, 0), room) for PAY rows, else 0 (`payable_amount` only: the
    unpaid amount and the reason follow from it, see `cap_reason`).

    cumulative: room = max(0, limit - paid_before); monthly: room = limit.
    """
    earned = pl.col("earned_amount")
    limit = pl.col("limit_amount")
    if settings.cap_basis == "cumulative":
        room = pl.max_horizontal(limit - pl.col("paid_before_amount"), ZERO)
    else:
        room = limit
    is_pay = pl.col("outcome") == Outcome.PAY.value
    payable = (
        pl.when(is_pay)
        .then(pl.min_horizontal(pl.max_horizontal(earned, ZERO), room))
        .otherwise(ZERO)
    )
    return [to_money(payable).alias("payable_amount")]


def cap_reason() -> pl.Expr:
    """`CAPPED` when 0 <= payable < earned, `NEGATIVE_NET` when earned < 0, else none."""
    earned = pl.col("earned_amount")
    payable = pl.col("payable_amount")
    return (
        pl.when(pl.col("outcome") != Outcome.PAY.value)
        .then(pl.col("reason"))
        .when(earned < ZERO)
        .then(pl.lit(Reason.NEGATIVE_NET.value))
        .when((payable >= ZERO) & (payable < earned))
        .then(pl.lit(Reason.CAPPED.value))
        .otherwise(pl.lit(None, pl.String))
    )


def payout_rows(
    *,
    earned: pl.LazyFrame,
    plans: pl.LazyFrame,
    periods: pl.LazyFrame,
    limits: pl.LazyFrame,
    plans_with_activity: pl.LazyFrame | None,
    paid_before: pl.DataFrame,
    month: str,
    payment_date: date,
    run_id: str,
    settings: RuleSettings,
) -> pl.LazyFrame:
    """One payout row per plan with routed earnings, decided by the ordered plan rules.

    `earned` holds `earnings_count` and `earned_amount` per plan (`earned_per_plan`);
    `plans`, `periods` (program, period, period_start, period_end) and `limits` hold valid rows
    only; `plans_with_activity` is None when neither campaigns nor activities were given;
    `paid_before` holds `paid_before_amount` per plan from the published earlier months.
    """
    activity_checked = plans_with_activity is not None
    activity = (
        plans_with_activity.select("plan_id")
        .unique()
        .with_columns(pl.lit(True).alias("__has_activity"))
        if plans_with_activity is not None
        else pl.LazyFrame(schema={"plan_id": pl.String, "__has_activity": pl.Boolean})
    )
    return (
        earned.join(plans, on="plan_id", how="inner")
        .join(periods, on=["program", "period"], how="left")
        .join(limit_in_force(limits, month), on="plan_id", how="left")
        .join(activity, on="plan_id", how="left")
        .join(paid_before.lazy(), on="plan_id", how="left")
        .with_columns(
            pl.lit(activity_checked).alias("__activity_checked"),
            pl.col("__has_activity").fill_null(False),
            pl.col("paid_before_amount").fill_null(ZERO).cast(MONEY),
        )
        .with_columns(
            first_rule(settings, "outcome").alias("outcome"),
            first_rule(settings, "reason").alias("reason"),
        )
        .with_columns(apply_cap(settings))
        .with_columns(
            to_money(pl.col("earned_amount") - pl.col("payable_amount")).alias("unpaid_amount"),
            cap_reason().alias("reason"),
            pl.lit(run_id).alias("run_id"),
            pl.lit(month).alias("earning_month"),
            pl.lit(payment_date).alias("payment_date"),
            pl.col("limit_amount").cast(MONEY),
        )
        .select(PAYOUT_COLUMNS)
        .sort("plan_id")
    )


def plans_with_activity(campaigns: Frame, activities: Frame) -> Frame:
    """5. A plan has an activity when a valid activity belongs to one of its valid campaigns."""
    valid_campaigns = campaigns.filter(pl.col(OK)).select("campaign_id", "plan_id")
    valid_activities = activities.filter(pl.col(OK)).select("campaign_id")
    return (
        valid_campaigns.join(valid_activities, on="campaign_id", how="semi")
        .select("plan_id")
        .unique()
    )


def totals(payouts: pl.DataFrame) -> pl.DataFrame:
    """Count and sums per currency and outcome, for the manifest and the summary."""
    return (
        payouts.group_by("currency", "outcome")
        .agg(
            pl.len().cast(pl.Int64).alias("plans"),
            pl.col("earnings_count").sum().cast(pl.Int64).alias("earnings_rows"),
            to_money(pl.col("earned_amount").sum()).alias("earned_amount"),
            to_money(pl.col("payable_amount").sum()).alias("payable_amount"),
            to_money(pl.col("unpaid_amount").sum()).alias("unpaid_amount"),
        )
        .sort("currency", "outcome")
    )
