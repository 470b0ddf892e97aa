"""One earning month from input text to payout and exception rows (SPEC sections 3 and 4).

`check_inputs` validates every dataset in dependency order (programs, plans, limits, campaigns,
activities, then the month's earnings); `compute_month` routes and decides. Both are pure: the
frames come in, the frames go out, and `flows/` does the reading and writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from coop_rules import integrity, payouts, routing
from coop_rules.calendar import parse_month, payment_date
from coop_rules.integrity import OK, PLAN_KEY
from coop_rules.money import MONEY, ZERO, to_money
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import ROW, Code, Dataset
from schemas.inputs import (
    EXCEPTION_COLUMNS,
    INPUTS,
    MONTH_FORM,
    empty_exceptions,
    finish_exceptions,
    parse_text,
    validate_text,
)


@dataclass(frozen=True)
class CheckedInputs:
    """Typed input frames with `OK` per row, and the exception rows found in them."""

    frames: dict[Dataset, pl.DataFrame]
    exceptions: pl.DataFrame
    activity_checked: bool


@dataclass(frozen=True)
class MonthResult:
    """What one run publishes, before the run id and the month columns are added to exceptions."""

    payouts: pl.DataFrame
    exceptions: pl.DataFrame
    payments: pl.DataFrame
    totals: pl.DataFrame
    reconciliation: dict[str, object]


def in_scope(earnings: pl.DataFrame, month: str) -> pl.DataFrame:
    """Earnings rows of month M, and rows whose month cannot be read (they belong to no month,
    so every run reports them rather than lose them)."""
    month_col = pl.col("earning_month")
    # A file holds few distinct months: judge each distinct text once, not every row.
    distinct = earnings.select(month_col.unique().drop_nulls())
    readable = distinct.filter(
        month_col.str.contains(MONTH_FORM)
        & (month_col + "-01").str.to_date("%Y-%m-%d", strict=False).is_not_null()
    ).get_column("earning_month")
    return earnings.filter(
        (month_col == month) | ~month_col.is_in(readable.implode()).fill_null(False)
    )


def _mark(frame: pl.DataFrame, exceptions: pl.DataFrame) -> pl.DataFrame:
    """Set `OK` to false on the rows named by `exceptions`."""
    bad = exceptions.get_column("row_number").unique()
    return frame.with_columns((pl.col(OK) & ~pl.col(ROW).is_in(bad.implode())).alias(OK))


def _check(
    dataset: Dataset,
    text: pl.DataFrame,
    settings: RuleSettings,
    extra_key_rows: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Schema and key checks of one dataset; returns the typed frame and its exceptions."""
    spec = INPUTS[dataset]
    found = [validate_text(text, spec, settings)]
    keys_source = text if extra_key_rows is None else extra_key_rows
    for keys in spec.unique_keys:
        dupes = integrity.duplicate_keys(keys_source, keys, spec.record_key)
        if extra_key_rows is not None:
            dupes = dupes.filter(pl.col("row_number").is_in(text.get_column(ROW).implode()))
        found.append(finish_exceptions(dupes, dataset))
    frame = text.with_columns(pl.lit(True).alias(OK))
    for exceptions in found:
        frame = _mark(frame, exceptions)
    return frame, found


def check_inputs(
    text: dict[Dataset, pl.DataFrame | None], month: str, settings: RuleSettings
) -> CheckedInputs:
    """Validate every dataset (SPEC 3): forms, keys and references, in dependency order."""
    all_found: list[pl.DataFrame] = []
    frames: dict[Dataset, pl.DataFrame] = {}

    def add(dataset: Dataset, frame: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
        found = finish_exceptions(found, dataset)
        all_found.append(found)
        return _mark(frame, found)

    def finish(dataset: Dataset, frame: pl.DataFrame, found: list[pl.DataFrame]) -> pl.DataFrame:
        all_found.extend(found)
        return parse_text(frame, INPUTS[dataset])

    programs, found = _check(Dataset.PROGRAMS, text[Dataset.PROGRAMS], settings)
    programs = finish(Dataset.PROGRAMS, programs, found)
    programs = add(Dataset.PROGRAMS, programs, integrity.program_dates(programs))

    plans, found = _check(Dataset.PLANS, text[Dataset.PLANS], settings)
    found.append(
        finish_exceptions(
            integrity.duplicate_keys(plans, PLAN_KEY, "plan_id", Code.DUPLICATE_PLAN),
            Dataset.PLANS,
        )
    )
    for exceptions in found[-1:]:
        plans = _mark(plans, exceptions)
    plans = finish(Dataset.PLANS, plans, found)
    plans = add(
        Dataset.PLANS,
        plans,
        integrity.unknown_references(plans, programs, ["program", "period"], "plan_id", "programs"),
    )
    plans = add(Dataset.PLANS, plans, integrity.plan_dates(plans, settings))

    limits, found = _check(Dataset.PLAN_LIMITS, text[Dataset.PLAN_LIMITS], settings)
    limits = finish(Dataset.PLAN_LIMITS, limits, found)
    limits = add(
        Dataset.PLAN_LIMITS,
        limits,
        integrity.unknown_references(limits, plans, ["plan_id"], "plan_id", "plans"),
    )
    # The decimals of a limit are checked against its plan's currency on the text.
    limit_text = text[Dataset.PLAN_LIMITS].join(limits.select(ROW, OK), on=ROW, how="left")
    limits = add(Dataset.PLAN_LIMITS, limits, integrity.limit_currency(limit_text, plans, settings))

    activity_checked = (
        text.get(Dataset.CAMPAIGNS) is not None or text.get(Dataset.ACTIVITIES) is not None
    )
    for dataset, parent, on, parent_name in (
        (Dataset.CAMPAIGNS, plans, ["plan_id"], "plans"),
        (Dataset.ACTIVITIES, None, ["campaign_id"], "campaigns"),
    ):
        source = text.get(dataset)
        if source is None:
            source = pl.DataFrame(
                schema={**{c: pl.String for c in INPUTS[dataset].columns}, ROW: pl.Int64}
            )
        frame, found = _check(dataset, source, settings)
        frame = finish(dataset, frame, found)
        parent_frame = parent if parent is not None else frames[Dataset.CAMPAIGNS]
        frame = add(
            dataset,
            frame,
            integrity.unknown_references(
                frame, parent_frame, on, INPUTS[dataset].record_key, parent_name
            ),
        )
        frames[dataset] = frame

    all_earnings = text[Dataset.EARNINGS]
    scoped = in_scope(all_earnings, month)
    earnings, found = _check(Dataset.EARNINGS, scoped, settings, extra_key_rows=all_earnings)
    earnings = finish(Dataset.EARNINGS, earnings, found)

    frames.update(
        {
            Dataset.PROGRAMS: programs,
            Dataset.PLANS: plans,
            Dataset.PLAN_LIMITS: limits,
            Dataset.EARNINGS: earnings,
        }
    )
    exceptions = pl.concat([e for e in all_found if not e.is_empty()] or [empty_exceptions()])
    return CheckedInputs(frames, exceptions, activity_checked)


def plans_with_activity(frames: dict[Dataset, pl.DataFrame]) -> pl.DataFrame:
    """Plans that have at least one valid activity in a valid campaign."""
    campaigns = frames[Dataset.CAMPAIGNS].filter(pl.col(OK)).select("campaign_id", "plan_id")
    activities = frames[Dataset.ACTIVITIES].filter(pl.col(OK)).select("campaign_id")
    return campaigns.join(activities, on="campaign_id", how="semi").select("plan_id").unique()


def earnings_exceptions_with_amounts(
    exceptions: pl.DataFrame, earnings: pl.DataFrame
) -> pl.DataFrame:
    """Give earnings exceptions the row's amount and currency where the amount parses and fits
    its currency (SPEC 5), so reconciliation can account for every amount."""
    is_earnings = pl.col("source") == Dataset.EARNINGS.value
    amount_bad = (
        exceptions.filter(is_earnings & pl.col("column").is_in(["amount", "currency"]))
        .get_column("row_number")
        .unique()
    )
    # Only the rows that have exceptions are looked up (a few per cent of millions).
    reported = exceptions.filter(is_earnings).get_column("row_number").unique()
    fitting = earnings.filter(
        pl.col(ROW).is_in(reported.implode()) & ~pl.col(ROW).is_in(amount_bad.implode())
    ).select(
        pl.col(ROW).alias("row_number"),
        pl.col("amount").alias("__amount"),
        pl.col("currency").alias("__currency"),
    )
    return (
        exceptions.join(fitting, on="row_number", how="left")
        .with_columns(
            pl.when(is_earnings)
            .then(pl.col("__amount"))
            .otherwise(pl.col("amount"))
            .alias("amount"),
            pl.when(is_earnings)
            .then(pl.col("__currency"))
            .otherwise(pl.col("currency"))
            .alias("currency"),
        )
        .select(list(EXCEPTION_COLUMNS))
    )


def reconcile(
    earnings: pl.DataFrame, payout_rows: pl.DataFrame, exceptions: pl.DataFrame
) -> dict[str, object]:
    """The figures of SPEC 4's reconciliation, and whether each holds.

    Rows: in-scope = routed to payouts + with exceptions (each row once, however many problems).
    Amounts per currency: in-scope amounts that parse and fit = earned + exception amounts.
    """
    earning_rows = exceptions.filter(pl.col("source") == Dataset.EARNINGS.value)
    exception_rows = earning_rows.unique("row_number")
    in_scope_rows = earnings.height
    routed_rows = int(payout_rows.get_column("earnings_count").sum() or 0)
    rows_hold = in_scope_rows == routed_rows + exception_rows.height

    fitting = earnings.join(
        earning_rows.filter(pl.col("column").is_in(["amount", "currency"])).select(
            pl.col("row_number").alias(ROW)
        ),
        on=ROW,
        how="anti",
    )
    input_sums = fitting.group_by("currency").agg(to_money(pl.col("amount").sum()).alias("input"))
    earned = payout_rows.group_by("currency").agg(
        to_money(pl.col("earned_amount").sum()).alias("earned")
    )
    excepted = (
        exception_rows.filter(pl.col("amount").is_not_null())
        .group_by("currency")
        .agg(to_money(pl.col("amount").sum()).alias("exceptions"))
    )
    per_currency = (
        input_sums.join(earned, on="currency", how="full", coalesce=True)
        .join(excepted, on="currency", how="full", coalesce=True)
        .with_columns(pl.col("input", "earned", "exceptions").fill_null(ZERO))
        .with_columns((pl.col("input") == pl.col("earned") + pl.col("exceptions")).alias("holds"))
        .sort("currency")
    )
    rows_balanced = payout_rows.filter(
        pl.col("earned_amount") != pl.col("payable_amount") + pl.col("unpaid_amount")
    ).height
    amounts_hold = bool(per_currency.get_column("holds").all())
    return {
        "in_scope_rows": in_scope_rows,
        "routed_rows": routed_rows,
        "exception_rows": exception_rows.height,
        "rows_hold": rows_hold,
        "per_currency": [
            {
                "currency": row["currency"],
                "input_amount": str(row["input"]),
                "earned_amount": str(row["earned"]),
                "exception_amount": str(row["exceptions"]),
                "holds": row["holds"],
            }
            for row in per_currency.iter_rows(named=True)
        ],
        "amounts_hold": amounts_hold,
        "payout_rows_unbalanced": rows_balanced,
        "holds": rows_hold and amounts_hold and rows_balanced == 0,
    }


def compute_month(
    checked: CheckedInputs,
    month: str,
    settings: RuleSettings,
    run_id: str,
    paid_before: pl.DataFrame,
) -> MonthResult:
    """Route the month's earnings and decide each plan's payout (SPEC 4)."""
    frames = checked.frames
    first_day = parse_month(month)
    pay_day: date = payment_date(month, settings.payment_day)
    earnings = frames[Dataset.EARNINGS]
    routed = routing.route_earnings(
        earnings.lazy()
        .filter(pl.col(OK))
        .select(ROW, "earning_id", "mpn_id", "program", "fund", "amount", "currency"),
        frames[Dataset.PROGRAMS],
        frames[Dataset.PLANS],
        first_day,
    ).collect()
    route_exceptions = finish_exceptions(
        # In-memory engine: polars 2.1's streaming engine panics on these when/then messages
        # ("assertion failed: i < self.len()" in binview) once the input is a projection.
        routing.routing_exceptions(routed.lazy()).collect(engine="in-memory"),
        Dataset.EARNINGS,
    )
    valid_plans = frames[Dataset.PLANS].filter(pl.col(OK))
    periods = (
        frames[Dataset.PROGRAMS]
        .filter(pl.col(OK))
        .select("program", "period", "period_start", "period_end")
    )
    payout_frame = payouts.payout_rows(
        routed=routing.routed_to_plans(routed.lazy()),
        plans=valid_plans.select(payouts.PLAN_COLUMNS),
        periods=periods,
        limits=frames[Dataset.PLAN_LIMITS]
        .filter(pl.col(OK))
        .select("plan_id", "effective_month", "limit_amount"),
        plans_with_activity=plans_with_activity(frames) if checked.activity_checked else None,
        paid_before=paid_before.select("plan_id", pl.col("paid_before_amount").cast(MONEY)),
        month=month,
        pay_day=pay_day,
        run_id=run_id,
        settings=settings,
    ).collect()
    exceptions = earnings_exceptions_with_amounts(
        pl.concat([checked.exceptions, route_exceptions]), earnings
    ).sort("source", "row_number", "code", "column", nulls_last=True)
    return MonthResult(
        payouts=payout_frame,
        exceptions=exceptions,
        payments=payouts.payments(payout_frame),
        totals=payouts.totals(payout_frame),
        reconciliation=reconcile(earnings, payout_frame, exceptions),
    )
