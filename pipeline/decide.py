"""Stage "decide": each plan's payout row from its routed earnings (docs/payouts.md).

The ordered plan rules, the limit in force and the cap are `coop_rules/payouts.py`; this stage
gives them the valid reference rows and the month's sums, gathers every exception of the month
and reconciles the figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from coop_rules import payouts
from coop_rules.calendar import payment_date
from coop_rules.integrity import OK
from coop_rules.money import MONEY
from coop_rules.reconciliation import Reconciliation, reconcile
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import Dataset
from pipeline.route import Earnings
from pipeline.validate import References
from schemas.inputs import EXCEPTION_ORDER

# The columns of each reference dataset `decide` reads (the rest stay on disk).
DECIDE_COLUMNS: dict[Dataset, tuple[str, ...]] = {
    Dataset.PROGRAMS: ("program", "period", "period_start", "period_end", OK),
    Dataset.PLANS: (*payouts.PLAN_COLUMNS, OK),
    Dataset.PLAN_LIMITS: ("plan_id", "effective_month", "limit_amount", OK),
    Dataset.CAMPAIGNS: ("campaign_id", "plan_id", OK),
    Dataset.ACTIVITIES: ("campaign_id", OK),
}


@dataclass(frozen=True)
class CheckedReferences:
    """What decide takes of stage validate: the checked reference datasets as lazy frames
    (stage decide scans them from the work folder, so the payout query reads the rows and
    columns it needs when it runs, instead of holding every plan and limit in memory first),
    their exception rows, and whether campaigns or activities were given."""

    frames: Mapping[Dataset, pl.LazyFrame]
    exceptions: pl.DataFrame
    activity_checked: bool

    @classmethod
    def of(cls, references: References) -> CheckedReferences:
        """The references as stage validate's pure function gives them, in memory."""
        frames = {dataset: frame.lazy() for dataset, frame in references.frames.items()}
        return cls(frames, references.exceptions, references.activity_checked)


@dataclass(frozen=True)
class MonthResult:
    """What one month publishes, before the run id and month columns are added to exceptions."""

    payouts: pl.DataFrame
    exceptions: pl.DataFrame
    totals: pl.DataFrame
    reconciliation: Reconciliation


def decide(
    references: CheckedReferences,
    earnings: Earnings,
    month: str,
    settings: RuleSettings,
    run_id: str,
    paid_before: pl.DataFrame,
) -> MonthResult:
    """Decide each plan's payout from its routed earnings; `paid_before` holds
    `paid_before_amount` per plan from the published earlier months of the period."""
    frames = references.frames
    valid = pl.col(OK)
    payout_frame = payouts.payout_rows(
        earned=earnings.earned.lazy(),
        plans=frames[Dataset.PLANS].filter(valid).select(payouts.PLAN_COLUMNS),
        periods=frames[Dataset.PROGRAMS]
        .filter(valid)
        .select("program", "period", "period_start", "period_end"),
        limits=frames[Dataset.PLAN_LIMITS]
        .filter(valid)
        .select("plan_id", "effective_month", "limit_amount"),
        plans_with_activity=(
            payouts.plans_with_activity(frames[Dataset.CAMPAIGNS], frames[Dataset.ACTIVITIES])
            if references.activity_checked
            else None
        ),
        paid_before=paid_before.select("plan_id", pl.col("paid_before_amount").cast(MONEY)),
        month=month,
        payment_date=payment_date(month, settings.payment_day),
        run_id=run_id,
        settings=settings,
    ).collect()
    # Reconciled over the exception rows where they lie, before they are gathered into one
    # frame: the rows it reads and counts are not held on top of the month's exceptions.
    reconciliation = reconcile(
        earnings.in_scope_rows,
        earnings.input_sums,
        payout_frame,
        pl.concat([references.exceptions.lazy(), earnings.exceptions]),
    )
    return MonthResult(
        payouts=payout_frame,
        exceptions=month_exceptions(references.exceptions, earnings.exceptions),
        totals=payouts.totals(payout_frame),
        reconciliation=reconciliation,
    )


def month_exceptions(references: pl.DataFrame, earnings: pl.LazyFrame) -> pl.DataFrame:
    """Every exception row of the month in `EXCEPTION_ORDER`. The earnings' rows (by far the
    most: a million in a 40M-row month) arrive in that order from stage route and are put
    between the other files' rows without being sorted again."""
    ordered = references.sort(*EXCEPTION_ORDER, nulls_last=True)
    source = pl.col("source")
    return pl.concat(
        [
            ordered.filter(source < Dataset.EARNINGS.value),
            earnings.collect(),
            ordered.filter(source > Dataset.EARNINGS.value),
        ]
    )
