"""The Prefect flow of the monthly run: one task per stage, and the run's artifacts
(docs/operations.md, "The schedule").

The flow calls `flows.run.run_month`, the same sequence the tests call, with every stage made a
task: the UI shows read, validate, route, decide, propose-payments and publish as task runs with
their state and duration. Tasks receive the run and the small summaries of earlier stages
(frames go through the run's work folder, never through Prefect); none caches (`NO_CACHE`), so
a corrected file at the same path is read afresh. Each task's options are declared beside its
stage (`STAGE` in `flows/stages/*.py`): only stage read retries, and only on an OSError.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext, TagsContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.states import Failed
from pydantic import Field

from coop_rules.calendar import previous_month
from flows import clock
from flows.defaults import DEFAULTS
from flows.errors import RunError, UsageError
from flows.manifest import (
    Table,
    batch_totals,
    markdown,
    plain_markdown,
    summary_sentences,
    summary_tables,
)
from flows.month import RunOptions, RunOutcome, progress
from flows.options import check_reason
from flows.records import BatchTotal
from flows.release import check_approver, release_month
from flows.run import STAGES, run_month
from flows.stages import Stage

SUMMARY_KEY = "coop-payouts-summary"
TOP_PAYOUTS_KEY = "coop-payouts-top-payouts"
DEPLOYMENT_NAME = "monthly"
FLOW_NAME = "coop-payouts-month"
CRON = "0 6 1 * *"
TAGS = ("coop-payouts",)

T = TypeVar("T")


class _ToRunLogger(logging.Handler):
    """Progress lines of a stage, into the task run's log in the Prefect UI."""

    def emit(self, record: logging.LogRecord) -> None:
        get_run_logger().info(record.getMessage())


def _logged(stage: Callable[..., T]) -> Callable[..., T]:
    @wraps(stage)
    def run_stage(*args: Any, **kwargs: Any) -> T:
        handler = _ToRunLogger()
        progress.addHandler(handler)
        try:
            return stage(*args, **kwargs)
        finally:
            progress.removeHandler(handler)

    return run_stage


def _stage_task(stage: Stage[Any]) -> Any:
    return task(name=stage.name, cache_policy=NO_CACHE, persist_result=False, **stage.task_options)(
        _logged(stage.run)
    )


# One task per stage, made once: its options are declared beside the stage (`STAGE`).
STAGE_TASKS: dict[str, Any] = {stage.name: _stage_task(stage) for stage in STAGES}


def as_task(stage: Stage[Any]) -> Callable[..., Any]:
    """The Prefect task of a stage."""
    return STAGE_TASKS[stage.name]


def summary_markdown(outcome: RunOutcome) -> str:
    """The markdown artifact: totals, exceptions by code, the batch, what changed."""
    lines = [
        f"# coop-payouts {outcome.month}: {outcome.status}",
        "",
        *(f"- {plain_markdown(line.strip())}" for line in outcome.message.splitlines()),
        "",
    ]
    manifest = outcome.manifest
    if manifest is None:
        return "\n".join(lines)
    lines += [f"Payment date: **{manifest.payment_date}**. Run folder: `{outcome.run_dir}`.", ""]
    for table in summary_tables(manifest):
        lines += [*markdown(table), ""]
    payments = largest_payments(outcome)
    if payments.rows:
        lines += [*markdown(payments), ""]
    lines += [f"- {plain_markdown(sentence)}" for sentence in summary_sentences(manifest)]
    lines += [f"- {plain_markdown(note)}" for note in outcome.notes]
    return "\n".join(lines)


def largest_payments(outcome: RunOutcome, per_currency: int = 5) -> Table:
    """The largest payment orders of the run's batch in each currency, as its bank file
    states them (the approver sees what would leave)."""
    columns = ("payment_id", "mpn_id", "currency", "amount")
    if outcome.run_dir is None:
        return Table("largest payments", columns, [])
    # Ordered by the amount's value, shown as the bank file writes it.
    orders = pl.scan_csv(outcome.run_dir / "payments.csv", infer_schema=False).select(
        *columns, pl.col("amount").cast(pl.Decimal(18, 2)).alias("__value")
    )
    top = largest_per_currency(orders, "__value", "payment_id", per_currency).select(columns)
    return Table("largest payments", columns, list(top.iter_rows()), numeric=("amount",))


def top_payouts(outcome: RunOutcome, per_currency: int = 5) -> list[dict[str, str]]:
    """The largest payable amounts of the run in each currency, as text (decimals are not
    JSON; one list across currencies would let yen crowd out the rest)."""
    if outcome.run_dir is None:
        return []
    payouts = (
        pl.scan_parquet(outcome.run_dir / "payouts.parquet")
        .filter(pl.col("payable_amount") > 0)
        .select("currency", "plan_id", "mpn_id", "payable_amount", "outcome", "reason")
    )
    frame = largest_per_currency(payouts, "payable_amount", "plan_id", per_currency)
    return [
        {key: "" if value is None else str(value) for key, value in row.items()}
        for row in frame.iter_rows(named=True)
    ]


def largest_per_currency(rows: pl.LazyFrame, amount: str, key: str, count: int) -> pl.DataFrame:
    """The `count` rows of largest `amount` in each currency, the smaller `key` first among
    equal amounts; by currency, then largest first. Each currency's largest are kept as the
    rows go by, never every row sorted (a million plans' payouts: 0.07 s against 0.37 s)."""
    columns = rows.collect_schema().names()
    others = [name for name in columns if name != "currency"]
    return (
        rows.group_by("currency")
        .agg(pl.col(others).top_k_by([amount, key], k=count, reverse=[False, True]))
        .explode(others)
        .sort("currency", amount, key, descending=[False, True, False])
        .select(columns)
        .collect()
    )


def flow_run_name() -> str:
    """coop-payouts-YYYY-MM: the month in every flow run's name."""
    month = flow_run.parameters.get("month") or previous_month(clock.now().date())
    return f"coop-payouts-{month}"


@flow(name=FLOW_NAME, flow_run_name=flow_run_name, log_prints=False, persist_result=False)
def monthly_payout(
    month: str | None = None,
    input_dir: str = str(DEFAULTS.input_dir),
    output_dir: str = str(DEFAULTS.output_dir),
    rules: str | None = None,
    reason: str | None = None,
    strict: bool = False,
    allow_empty: bool = False,
    await_approval: bool = False,
    approval_timeout_hours: float = DEFAULTS.approval_timeout_hours,
) -> dict[str, Any] | State:
    """Publish the payout, exception and payment files of one earning month (default: the
    previous calendar month, as the scheduled run on the 1st wants). With `await_approval`
    (the deployment sets it), the run then pauses until a person approves or rejects the
    payment batch in the UI, or the timeout passes (docs/payments.md, "Approval")."""
    check_reason(reason)
    if deployed():
        # Served or deployed: one line per flow run in the terminal of `serve` or the worker,
        # which streams this process's stdout (Prefect's own console log stays quiet).
        print(started_line(month, input_dir, output_dir), flush=True)
    options = RunOptions(
        month=month or previous_month(clock.now().date()),
        input_dir=Path(input_dir),
        output_dir=Path(output_dir),
        rules_path=Path(rules) if rules else None,
        reason=reason,
        strict=strict,
        allow_empty=allow_empty,
    )
    with stages_untagged():
        outcome = run_month(options, as_task)
    waits = await_approval and outcome.status == "published" and _proposes(outcome)
    if waits:
        # The approver reads the summary and the batch before answering (docs/payments.md).
        outcome.notes.append(f"waiting for approval of the batch of run {outcome.run_id}")
    elif await_approval and outcome.status == "published":
        outcome.notes.append("no batch to approve: this run proposes none")
    publish_artifacts(outcome)
    if not waits:
        return outcome_summary(outcome)
    outcome.notes.pop()
    answer = approve(outcome, options.output_dir, approval_timeout_hours)
    outcome.notes.append(answer.sentence)
    publish_artifacts(outcome)
    if not answer.ok:
        return Failed(message=answer.sentence, data=outcome_summary(outcome))
    return outcome_summary(outcome)


# Prefect's documented override of a runtime value, for tests.
DEPLOYMENT_ID_OVERRIDE = "PREFECT__RUNTIME__DEPLOYMENT__ID"


def deployed() -> bool:
    """Whether this flow run was started from a deployment (by `serve` or a worker), as the
    run's own record in the engine says. `prefect.runtime.deployment.id` would ask the server
    for the flow run again: 0.2 s of every run."""
    if os.environ.get(DEPLOYMENT_ID_OVERRIDE):
        return True
    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    return run is not None and run.deployment_id is not None


def _proposes(outcome: RunOutcome) -> bool:
    return outcome.manifest is not None and outcome.manifest.proposes_batch


def started_line(month: str | None, input_dir: str, output_dir: str) -> str:
    """The line a served or deployed flow run prints as it starts."""
    chosen = month or previous_month(clock.now().date())
    started = datetime.now(UTC).isoformat(timespec="seconds")
    name = flow_run.get_name() or f"coop-payouts-{chosen}"
    return (
        f"coop-payouts: {started} flow run {name} ({flow_run.get_id()}) started: "
        f"month {chosen}, --input {input_dir}, --output {output_dir}"
    )


class Approval(RunInput):
    """What the approver of a payment batch answers in the Prefect UI."""

    approve: bool = Field(description="Release the batch (true) or leave it proposed (false).")
    approved_by: str = Field(description="Your name, as the ledger will record it.")
    note: str = Field(default="", description="Anything finance should know.")


@dataclass(frozen=True)
class Answer:
    """How the wait for approval ended: the sentence the summary shows, and whether the flow
    run ends well (a batch approved but not released ends it Failed)."""

    sentence: str
    ok: bool = True


def approval_form(outcome: RunOutcome, refused: str = "") -> type[Approval]:
    """The form the approver answers, its description naming the run and the batch's totals
    per currency, so the answer is about that batch (docs/payments.md, "Approval")."""
    manifest = outcome.manifest
    totals = batch_totals(manifest) if manifest else []
    lines = [
        f"{refused}\n" if refused else "",
        f"Batch of {outcome.month}, run {outcome.run_id} (paid "
        f"{manifest.payment_date if manifest else '?'}). Approving releases this run's batch "
        "only: if the month is republished meanwhile, nothing is released.",
    ]
    lines += [f"- {plain_markdown(line)}" for line in batch_lines(totals)]
    return Approval.with_initial_data(description="\n".join(line for line in lines if line))


def batch_lines(totals: list[BatchTotal]) -> list[str]:
    """The batch per currency and status, one line each: accounts, paid, forfeited, carried."""
    return [
        f"{row.currency} {row.status}: {row.accounts} accounts, paid "
        f"{row.order_amount}, forfeited {row.forfeit_amount}, carried {row.carried_amount}"
        for row in totals
    ]


def approve(outcome: RunOutcome, output_dir: Path, timeout_hours: float) -> Answer:
    """Pause for a person's approval of the batch this flow run published; release exactly
    that run's batch if approved. A blank name is refused and the run waits again."""
    logger = get_run_logger()
    how = (
        f"release it from the command line: coop-payouts release --month {outcome.month} "
        f"--run {outcome.run_id} --approved-by NAME --output {output_dir}"
    )
    logger.info(f"waiting up to {timeout_hours} h for approval of the batch of {outcome.month}")
    deadline = time.monotonic() + max(1, int(timeout_hours * 3600))
    refused = ""
    while True:
        left = max(1, int(deadline - time.monotonic()))
        try:
            # Polled no less often than the timeout, so a short one ends when it says.
            answer = pause_flow_run(
                wait_for_input=approval_form(outcome, refused),
                timeout=left,
                poll_interval=min(10, left),
            )
        except FlowPauseTimeout:
            return Answer(
                f"the batch was not approved within {timeout_hours} h and stays proposed; {how}"
            )
        try:
            name = check_approver(answer.approved_by)
            break
        except UsageError:
            refused = "The last answer gave no name (only blanks); answer again with your name."
            logger.warning("an answer without a name was refused; waiting again")
    if not answer.approve:
        note = f" ({answer.note})" if answer.note else ""
        return Answer(f"the batch was rejected by {name}{note} and stays proposed; {how}")
    try:
        done = release_month(
            output_dir, outcome.month, name, run_id=outcome.run_id, note=answer.note
        )
    except RunError as error:
        return Answer(f"the approved batch was not released: {error}", ok=False)
    return Answer(done.message)


def publish_artifacts(outcome: RunOutcome) -> None:
    """The summary and the top payouts of a published month (an unchanged rerun keeps the
    month's artifacts as they are and only logs a line)."""
    if outcome.status != "published":
        get_run_logger().info(outcome.message)
        return
    create_markdown_artifact(
        summary_markdown(outcome), key=SUMMARY_KEY, description=f"coop-payouts {outcome.month}"
    )
    rows = top_payouts(outcome)
    if rows:
        create_table_artifact(rows, key=TOP_PAYOUTS_KEY, description=f"top payouts {outcome.month}")


def outcome_summary(outcome: RunOutcome) -> dict[str, Any]:
    """The flow's return value: JSON-able."""
    summary = asdict(outcome)
    summary["manifest"] = (
        outcome.manifest.model_dump(mode="json", by_alias=True) if outcome.manifest else None
    )
    summary["run_dir"] = str(outcome.run_dir) if outcome.run_dir else None
    return summary


@contextmanager
def stages_untagged() -> Iterator[None]:
    """The stages' task runs without the tags of the flow run: Prefect asks the server for a
    concurrency slot per tag as each tagged task run starts (0.4 s a task run at 10M rows,
    measured: 2.4 s a month), and no task concurrency limit rests on these tags. The flow run
    keeps them (the deployment's limit of one run at a time is on the flow run)."""
    with TagsContext(current_tags=set()):
        yield


@contextmanager
def month_tags(month: str) -> Iterator[None]:
    """Tags of the flow runs started inside: the project and the month."""
    from prefect import tags

    with tags(*TAGS, f"month-{month}"):
        yield
