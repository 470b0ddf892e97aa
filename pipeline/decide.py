"""Stage "decide": each plan's payout row from its routed earnings (docs/payouts.md).

The ordered plan rules, the limit in force and the cap are `coop_rules/payouts.py`; this stage
gives them the valid reference rows and the month's sums, gathers every exception of the month
and reconciles the figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from coop_rules import payouts
from coop_rules.calendar import payment_date
from coop_rules.integrity import OK
from coop_rules.money import MONEY
from coop_rules.reconciliation import reconcile
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import Dataset
from pipeline.route import Earnings
from pipeline.validate import References
from schemas.inputs import EXCEPTION_ORDER


@dataclass(frozen=True)
class MonthResult:
    """What one month publishes, before the run id and month columns are added to exceptions."""

    payouts: pl.DataFrame
    exceptions: pl.DataFrame
    totals: pl.DataFrame
    reconciliation: dict[str, object]


def decide(
    references: References,
    earnings: Earnings,
    month: str,
    settings: RuleSettings,
    run_id: str,
    paid_before: pl.DataFrame,
) -> MonthResult:
    """Decide each plan's payout from its routed earnings; `paid_before` holds
    `paid_before_amount` per plan from the published earlier months of the period."""
    frames = references.frames
    valid_plans = frames[Dataset.PLANS].filter(pl.col(OK))
    periods = (
        frames[Dataset.PROGRAMS]
        .filter(pl.col(OK))
        .select("program", "period", "period_start", "period_end")
    )
    payout_frame = payouts.payout_rows(
        earned=earnings.earned.lazy(),
        plans=valid_plans.select(payouts.PLAN_COLUMNS),
        periods=periods,
        limits=frames[Dataset.PLAN_LIMITS]
        .filter(pl.col(OK))
        .select("plan_id", "effective_month", "limit_amount"),
        plans_with_activity=(
            payouts.plans_with_activity(frames[Dataset.CAMPAIGNS], frames[Dataset.ACTIVITIES])
            if references.activity_checked
            else None
        ),
        paid_before=paid_before.select("plan_id", pl.col("paid_before_amount").cast(MONEY)),
        month=month,
        pay_day=payment_date(month, settings.payment_day),
        run_id=run_id,
        settings=settings,
    ).collect()
    exceptions = pl.concat([references.exceptions, earnings.exceptions]).sort(
        *EXCEPTION_ORDER, nulls_last=True
    )
    return MonthResult(
        payouts=payout_frame,
        exceptions=exceptions,
        totals=payouts.totals(payout_frame),
        reconciliation=reconcile(
            earnings.in_scope_rows, earnings.input_sums, payout_frame, exceptions
        ),
    )
