"""Stage "decide": each plan's payout row from its routed earnings (docs/payouts.md), gated by
--strict and by the reconciliation, validated against the output schemas and written into the
staged run folder with the rerun's changes (docs/reruns.md).

The ordered plan rules, the limit in force and the cap are `coop_rules/payouts.py`; this stage
gives them the valid reference rows and the month's sums, gathers every exception of the month
and reconciles the figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from coop_rules import payouts
from coop_rules.calendar import payment_date
from coop_rules.integrity import OK
from coop_rules.money import MONEY
from coop_rules.reconciliation import Reconciliation, reconcile
from coop_rules.reruns import change_totals, changes
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import Dataset
from flows import catalog, files
from flows.catalog import Handover, RunFile
from flows.errors import InputRejected, ReconciliationFailed
from flows.folder import OutputFolder
from flows.manifest import shown_amount
from flows.month import MonthRun, progress, sums_fit
from flows.records import (
    ChangeSummary,
    ChangeTotal,
    ExceptionCount,
    OutcomeTotal,
    OutputRecord,
    RegistryEntry,
    records_of,
)
from flows.stages import Stage
from flows.stages.summaries import Decided, ReadInputs, Routed, Validated, money_text
from schemas.inputs import EXCEPTION_ORDER
from schemas.outputs import Changes, Exceptions, Payouts

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


@dataclass(frozen=True)
class MonthResult:
    """What one month publishes, before the run id and month columns are added to exceptions."""

    payouts: pl.DataFrame
    exceptions: pl.DataFrame
    totals: pl.DataFrame
    reconciliation: Reconciliation


@dataclass(frozen=True)
class RoutedEarnings:
    """What decide takes of stage route: the sums per plan (plan_id, earnings_count,
    earned_amount), the in-scope amounts per currency, the exception rows in the published
    order, and how many rows were in scope."""

    earned: pl.DataFrame
    input_sums: pl.DataFrame
    exceptions: pl.LazyFrame
    in_scope_rows: int


def decide(
    references: CheckedReferences,
    earnings: RoutedEarnings,
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


def paid_before(folder: OutputFolder, basis: dict[str, str]) -> pl.DataFrame:
    """`paid_before_amount` per plan: payable of the published earlier months of the period."""
    parts = [folder.published_file("payouts", m) for m in basis]
    parts = [p for p in parts if p.exists()]
    if not parts:
        return pl.DataFrame(schema={"plan_id": pl.String, "paid_before_amount": MONEY})
    return (
        pl.scan_parquet(parts)
        .group_by("plan_id")
        .agg(pl.col("payable_amount").sum().cast(MONEY).alias("paid_before_amount"))
        .collect()
    )


def decide_payouts(
    run: MonthRun, inputs: ReadInputs, validated: Validated, routed: Routed
) -> Decided:
    """Decide every plan's payout and stage the run's payouts, exceptions and changes."""
    progress.info("applying the rules")
    result = decide_month(run, validated, routed)
    exceptions = with_run(result.exceptions, run)
    by_code = exceptions.group_by("source", "code").len("rows").sort("source", "code")
    gate(run, result, exceptions, by_code)
    progress.info("validating outputs")
    Payouts.validate(result.payouts)
    Exceptions.validate(exceptions)
    outputs, change_summary = stage_files(run, inputs.published, result.payouts, exceptions)
    return Decided(
        outputs=outputs,
        totals=records_of(OutcomeTotal, money_text(result.totals)),
        exceptions_by_code=records_of(ExceptionCount, money_text(by_code)),
        reconciliation=result.reconciliation,
        changes=change_summary,
    )


def decide_month(run: MonthRun, validated: Validated, routed: Routed) -> MonthResult:
    """`decide` over what stages validate and route kept, and the published months before."""
    with sums_fit(run.month):
        return decide(
            CheckedReferences(
                {
                    dataset: catalog.scan(run, dataset, list(columns))
                    for dataset, columns in DECIDE_COLUMNS.items()
                },
                catalog.load(run, Handover.REFERENCE_EXCEPTIONS),
                validated.activity_checked,
            ),
            RoutedEarnings(
                earned=catalog.load(run, Handover.EARNED),
                input_sums=catalog.load(run, Handover.INPUT_SUMS),
                exceptions=catalog.scan(run, Handover.EARNINGS_EXCEPTIONS),
                in_scope_rows=routed.in_scope_rows,
            ),
            run.month,
            run.rules.settings,
            run.run_id,
            paid_before(run.folder, validated.paid_before_basis),
        )


def stage_files(
    run: MonthRun,
    published: RegistryEntry | None,
    payouts: pl.DataFrame,
    exceptions: pl.DataFrame,
) -> tuple[dict[str, OutputRecord], ChangeSummary | None]:
    """Write payouts, exceptions and (for a rerun) the changes against the `published` run
    into the staged run folder; their records and the changes' summary."""
    run.staged.mkdir(parents=True)
    files = {RunFile.PAYOUTS: payouts, RunFile.EXCEPTIONS: exceptions}
    change_summary = None
    if published:
        changed = changes(
            pl.read_parquet(run.folder.run_dir(published.run_id) / RunFile.PAYOUTS),
            payouts,
            published.run_id,
            run.run_id,
            run.month,
        )
        Changes.validate(changed)
        files[RunFile.CHANGES] = changed
        change_summary = summarise_changes(changed, published.run_id, run.rules.settings.currencies)
    outputs = {name.value: catalog.save_file(run, name, frame) for name, frame in files.items()}
    # The month's files of the published datasets: hive partitions hold no partition column.
    catalog.save_part(run, "payouts", payouts.drop("earning_month"))
    catalog.save_part(run, "exceptions", exceptions.drop("earning_month"))
    return outputs, change_summary


def with_run(exceptions: pl.DataFrame, run: MonthRun) -> pl.DataFrame:
    """The exception rows with the run's id and month first. Built from the columns as they
    are: a polars step over the rows (a `select`) would first copy the month's exception rows,
    which arrive in many pieces, into one."""
    rows = exceptions.height
    return pl.DataFrame(
        [
            pl.repeat(run.run_id, rows, eager=True).alias("run_id"),
            pl.repeat(run.month, rows, eager=True).alias("earning_month"),
            *exceptions.get_columns(),
        ]
    )


def gate(
    run: MonthRun, result: MonthResult, exceptions: pl.DataFrame, by_code: pl.DataFrame
) -> None:
    """Stop before anything is written: --strict with row exceptions, or figures that do not
    reconcile."""
    if run.options.strict and exceptions.height:
        per_file = by_code.group_by("source").agg(pl.col("rows").sum()).sort("source")
        counts = ", ".join(f"{source} {rows}" for source, rows in per_file.iter_rows())
        kept = keep_rejected(run, exceptions)
        raise InputRejected(
            f"--strict: {exceptions.height} row exception(s) by file: {counts}; nothing was "
            f"published; each row, column and code is in {kept}"
        )
    if not result.reconciliation.holds:
        raise ReconciliationFailed(
            f"reconciliation of {run.month} does not hold "
            f"({json.dumps(result.reconciliation.model_dump(mode='json'))}); nothing was published"
        )


def keep_rejected(run: MonthRun, exceptions: pl.DataFrame) -> Path:
    """The exceptions of a run refused under --strict, where a person can read them and outside
    the published datasets: `rejected/<run_id>/exceptions.csv` and `.parquet`. Returns the CSV."""
    folder = run.folder.rejected / run.run_id
    folder.mkdir(parents=True, exist_ok=True)
    files.write_parquet_atomic(exceptions, folder / "exceptions.parquet")
    csv = folder / "exceptions.csv"
    files.write_bytes_atomic(files.spreadsheet_csv(exceptions), csv)
    return csv


def summarise_changes(
    changed: pl.DataFrame, previous_run_id: str, digits: dict[str, int]
) -> ChangeSummary:
    """What a rerun changed, in figures and in a few lines: one per currency."""
    totals = money_text(change_totals(changed))
    if totals:
        lines = [
            f"  {row['currency']}: {row['plans']} plan(s), earned "
            f"{_signed(shown_amount(row['earned_difference'], row['currency'], digits))}, "
            f"payable {_signed(shown_amount(row['payable_difference'], row['currency'], digits))}"
            for row in totals
        ]
        sentence = "\n".join([f"changed against run {previous_run_id}:", *lines])
    else:
        sentence = (
            f"no plan's earned amount, payable amount or outcome changed against run "
            f"{previous_run_id}"
        )
    return ChangeSummary(
        previous_run_id=previous_run_id,
        plans=changed.height,
        per_currency=records_of(ChangeTotal, totals),
        summary=sentence,
    )


def _signed(text: str) -> str:
    return text if text.startswith("-") else f"+{text}"


STAGE = Stage(
    "decide",
    decide_payouts,
    reads=(
        *DECIDE_COLUMNS,
        Handover.REFERENCE_EXCEPTIONS,
        Handover.EARNED,
        Handover.INPUT_SUMS,
        Handover.EARNINGS_EXCEPTIONS,
    ),
    writes=(RunFile.PAYOUTS, RunFile.EXCEPTIONS),
)
