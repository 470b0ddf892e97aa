"""Stage "decide": each plan's payout row (`pipeline/decide.py`, docs/payouts.md), gated by
--strict and by the reconciliation, validated against the output schemas and written into the
staged run folder with the rerun's changes (docs/reruns.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from coop_rules.money import MONEY
from coop_rules.reconciliation import Reconciliation
from coop_rules.reruns import change_totals, changes
from flows import io
from flows.errors import InputRejected, ReconciliationFailed
from flows.manifest import OutputRecord, shown_amount
from flows.publish import DATASETS, OutputFolder
from flows.records import ChangeSummary, ChangeTotal, ExceptionCount, OutcomeTotal, records_of
from flows.run import MonthRun, progress, sums_fit
from flows.stages import route, validate
from flows.stages.read import ReadInputs
from pipeline.decide import DECIDE_COLUMNS, MonthResult, decide
from schemas.outputs import Changes, Exceptions, Payouts


@dataclass(frozen=True)
class Decided:
    """What the staged run holds so far, as the manifest records it."""

    outputs: dict[str, OutputRecord]
    totals: list[OutcomeTotal]
    exceptions_by_code: list[ExceptionCount]
    reconciliation: Reconciliation
    changes: ChangeSummary | None


def month_part(run: MonthRun, dataset: str) -> Path:
    """The staged month file of a published dataset, next to the staged run."""
    return run.staging / f"{run.run_id}-{dataset}.parquet"


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


def money_text(frame: pl.DataFrame) -> list[dict]:
    """Rows of a frame for JSON: decimals and dates as text."""
    return [
        {
            key: value if value is None or isinstance(value, int | str | bool) else str(value)
            for key, value in row.items()
        }
        for row in frame.iter_rows(named=True)
    ]


def decide_payouts(
    run: MonthRun, inputs: ReadInputs, validated: validate.Validated, routed: route.Routed
) -> Decided:
    """Decide every plan's payout and stage the run's payouts, exceptions and changes."""
    progress.info("applying the rules")
    with sums_fit(run.month):
        result = decide(
            validate.load(run, validated, DECIDE_COLUMNS),
            route.load(run, routed),
            run.month,
            run.rules.settings,
            run.run_id,
            paid_before(run.folder, validated.paid_before_basis),
        )
    exceptions = with_run(result.exceptions, run)
    by_code = exceptions.group_by("source", "code").len("rows").sort("source", "code")
    gate(run, result, exceptions, by_code)
    progress.info("validating outputs")
    Payouts.validate(result.payouts)
    Exceptions.validate(exceptions)
    run.staged.mkdir(parents=True)
    files = {"payouts.parquet": result.payouts, "exceptions.parquet": exceptions}
    change_summary = None
    previous = inputs.published
    if previous:
        changed = changes(
            pl.read_parquet(run.folder.run_dir(previous.run_id) / "payouts.parquet"),
            result.payouts,
            previous.run_id,
            run.run_id,
            run.month,
        )
        Changes.validate(changed)
        files["changes.parquet"] = changed
        change_summary = summarise_changes(changed, previous.run_id, run.rules.settings.currencies)
    outputs = {
        name: OutputRecord(io.write_parquet_atomic(frame, run.staged / name), frame.height)
        for name, frame in files.items()
    }
    # The month's files of the published datasets: hive partitions hold no partition column.
    for dataset in DATASETS:
        io.write_parquet_atomic(
            files[f"{dataset}.parquet"].drop("earning_month"), month_part(run, dataset)
        )
    return Decided(
        outputs=outputs,
        totals=records_of(OutcomeTotal, money_text(result.totals)),
        exceptions_by_code=records_of(ExceptionCount, money_text(by_code)),
        reconciliation=result.reconciliation,
        changes=change_summary,
    )


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
    io.write_parquet_atomic(exceptions, folder / "exceptions.parquet")
    csv = folder / "exceptions.csv"
    io.write_bytes_atomic(io.spreadsheet_csv(exceptions), csv)
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
