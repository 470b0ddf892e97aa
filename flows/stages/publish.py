"""Stage "publish": the manifest and the workbook, then the staged run made the published month
in one atomic step (`flows/folder.py`, docs/reruns.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from coop_rules.calendar import payment_date
from flows import catalog, files
from flows.batches import statement_file
from flows.catalog import RunFile
from flows.folder import DATASETS, publish, read_registry
from flows.month import MonthRun, RunOutcome, progress
from flows.records import InputRecord, Manifest, OutputRecord, RegistryEntry, RulesRecord
from flows.report import write_report
from flows.stages import Stage
from flows.stages.summaries import Staged, Validated

# The reason a rerun records when only an earlier month of its period was (re)published.
EARLIER_MONTH_CHANGED = "an earlier month changed"


def later_months(run: MonthRun, validated: Validated) -> list[str]:
    """Published months after M in M's period: their paid_before rested on what M was."""
    if validated.period is None:
        return []
    last = validated.period[1]
    return [m for m in sorted(read_registry(run.folder)) if run.month < m <= last]


def build_manifest(run: MonthRun, staged: Staged) -> Manifest:
    """The run's manifest from what every stage before publish found."""
    inputs, validated, routed = staged.inputs, staged.validated, staged.routed
    decided, proposed = staged.decided, staged.proposed
    published = inputs.published
    reason = inputs.reason
    if published and not reason:
        # A run without --reason gets here only if its inputs and rules are the published
        # run's (else stage read refused it); a dry run may have other inputs: it says so.
        reason = (
            "the inputs or rules changed (a run needs --reason)"
            if inputs.reason_needed
            else EARLIER_MONTH_CHANGED
        )
    rows = {**validated.rows, "earnings": routed.rows}
    return Manifest(
        run_id=run.run_id,
        earning_month=run.month,
        payment_date=payment_date(run.month, run.rules.settings.payment_day).isoformat(),
        started_at=run.started_at,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reason=reason,
        supersedes=published.run_id if published else None,
        later_months_to_rerun=later_months(run, validated),
        inputs={
            dataset.value: InputRecord(
                path=str(file.path),
                sha256=inputs.sha256[dataset.value],
                rows=rows.get(dataset.value, 0),
                extra_columns=inputs.extra_columns.get(dataset.value, []),
            )
            for dataset, file in sorted(inputs.files.items())
        },
        in_scope_earnings_rows=routed.in_scope_rows,
        rules=RulesRecord.model_validate(
            {
                "path": str(run.rules.path),
                "sha256": run.rules.sha256,
                "settings": run.rules.settings.model_dump(mode="json"),
            }
        ),
        paid_before_basis=validated.paid_before_basis,
        month_digest=validated.month_digest,
        input_digest=inputs.input_digest,
        outputs={**decided.outputs, **proposed.outputs},
        totals=decided.totals,
        exceptions_by_code=decided.exceptions_by_code,
        reconciliation=decided.reconciliation,
        changes=decided.changes,
        payments=proposed.payments,
    )


def write_workbook(manifest: Manifest, staged: Path) -> OutputRecord:
    """The run's workbook, written beside its files before they are published (atomically,
    like every run file), and its record for the manifest."""
    path = staged / RunFile.REPORT
    return OutputRecord(files.write_atomic(path, lambda to: write_report(manifest, staged, to)), 0)


def publish_month(run: MonthRun, staged: Staged) -> RunOutcome:
    """Write the manifest and publish the staged run as the month."""
    manifest = build_manifest(run, staged)
    progress.info("writing the workbook")
    manifest.outputs[RunFile.REPORT.value] = write_workbook(manifest, run.staged)
    files.write_bytes_atomic(manifest.to_json(), catalog.path(run, RunFile.MANIFEST))
    progress.info("publishing")
    parts = {dataset: catalog.month_part(run, dataset) for dataset in DATASETS}
    targets = {}
    proposed = staged.proposed
    if proposed.batch:
        # The batch is proposed by publishing its statement beside the month.
        parts["statements"] = catalog.month_part(run, "statements")
        targets["statements"] = statement_file(run.folder, proposed.payments.payment_date)
    run_dir = publish(
        run.folder,
        run.month,
        run.run_id,
        run.staged,
        parts,
        RegistryEntry(
            run_id=run.run_id,
            month_digest=staged.validated.month_digest,
            input_digest=staged.inputs.input_digest,
        ),
        targets,
    )
    message = f"{run.month} published by run {run.run_id}"
    return RunOutcome(
        "published", run.month, run.run_id, run_dir, manifest, message + _what_follows(manifest)
    )


def dry_run_outcome(run: MonthRun, staged: Staged) -> RunOutcome:
    """What `coop-payouts check` reports: the summary the run would publish, nothing written."""
    manifest = build_manifest(run, staged)
    inputs = staged.inputs
    payouts = manifest.outputs["payouts.parquet"].rows
    exceptions = manifest.outputs["exceptions.parquet"].rows
    message = (
        f"{run.month} checked, nothing published: a run would publish {payouts} payout row(s) "
        f"and {exceptions} exception(s)"
    )
    notes = []
    if inputs.reason_needed and inputs.published:
        notes.append(
            f"{run.month} is published by run {inputs.published.run_id} from other inputs "
            "or rules: a run needs --reason TEXT to replace it"
        )
    return RunOutcome(
        "checked", run.month, run.run_id, None, manifest, message + _what_follows(manifest), notes
    )


def _what_follows(manifest: Manifest) -> str:
    """What a run's message adds after its first line, one sentence a line (each short enough
    to read at a glance): changes, batch notes, later months."""
    lines = []
    if manifest.changes:
        lines.append(manifest.changes.summary)
    lines += manifest.payments.notes if manifest.payments else []
    if manifest.later_months_to_rerun:
        lines.append(
            "the paid-before amounts of later published months rest on the months before them: "
            f"rerun {', '.join(manifest.later_months_to_rerun)} (backfill)"
        )
    return "".join(f"\n{line}" for line in lines)


STAGE = Stage(
    "publish",
    publish_month,
    reads=(RunFile.PAYOUTS, RunFile.EXCEPTIONS, RunFile.STATEMENTS, RunFile.PAYMENTS),
)
