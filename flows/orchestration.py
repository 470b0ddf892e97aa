"""The Prefect flow of the monthly run, its tasks and its artifacts (SPEC section 7).

Tasks receive paths and settings and return small summaries; none caches (`NO_CACHE`), so a
corrected file at the same path is read afresh. Retries only where a retry can help: reading the
input folder from a slow or flaky mount (an OSError), never a validation failure.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.settings import PREFECT_API_URL

from coop_rules.calendar import previous_month
from flows import io
from flows.monthly import Report, RunOptions, RunOutcome, run_month
from flows.options import check_reason

SUMMARY_KEY = "coop-payouts-summary"
TOP_PAYOUTS_KEY = "coop-payouts-top-payouts"
DEPLOYMENT_NAME = "monthly"
FLOW_NAME = "coop-payouts-month"
CRON = "0 6 1 * *"


def retry_on_os_error(task_: Any, task_run: Any, state: Any) -> bool:
    """Retry a task only when it failed on an OSError (a flaky mount), not on bad data."""
    return isinstance(state.data, OSError) and not isinstance(state.data, FileNotFoundError)


@task(
    name="check-input-folder",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_on_os_error,
)
def check_input_folder(input_dir: str) -> list[str]:
    """The input files the run will read (file-level problems stop the run here)."""
    return sorted(file.name for file in io.find_inputs(Path(input_dir)).values())


@task(name="run-month", cache_policy=NO_CACHE, persist_result=False)
def run_month_task(options: RunOptions, report: Report | None = None) -> RunOutcome:
    """Read, check, compute, stage and publish one month (see flows.monthly.run_month)."""
    return run_month(options, report or (lambda _: None))


def summary_markdown(outcome: RunOutcome) -> str:
    """The markdown artifact: totals, exceptions by code, reconciliation, where files went."""
    manifest = outcome.manifest
    lines = [f"# coop-payouts {outcome.month}: {outcome.status}", "", outcome.message, ""]
    if not manifest:
        return "\n".join(lines)
    lines += [
        f"Payment date: **{manifest['payment_date']}**. Run folder: `{outcome.run_dir}`.",
        "",
        "## Totals per currency and outcome",
        "",
        "| currency | outcome | plans | earned | payable | unpaid |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in manifest["totals"]:
        lines.append(
            f"| {row['currency']} | {row['outcome']} | {row['plans']} | {row['earned_amount']} "
            f"| {row['payable_amount']} | {row['unpaid_amount']} |"
        )
    lines += ["", "## Exceptions by code", "", "| source | code | rows |", "| --- | --- | ---: |"]
    for row in manifest["exceptions_by_code"]:
        lines.append(f"| {row['source']} | {row['code']} | {row['rows']} |")
    rec = manifest["reconciliation"]
    lines += [
        "",
        "## Reconciliation",
        "",
        f"In-scope earnings rows {rec['in_scope_rows']} = routed {rec['routed_rows']} "
        f"+ with exceptions {rec['exception_rows']}: "
        f"**{'holds' if rec['rows_hold'] else 'FAILS'}**",
        "",
        "| currency | input amount | earned | in exceptions | holds |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for row in rec["per_currency"]:
        lines.append(
            f"| {row['currency']} | {row['input_amount']} | {row['earned_amount']} "
            f"| {row['exception_amount']} | {row['holds']} |"
        )
    return "\n".join(lines)


def top_payouts(outcome: RunOutcome, limit: int = 10) -> list[dict[str, str]]:
    """The largest payable amounts of the run, as text (decimals are not JSON)."""
    if outcome.run_dir is None:
        return []
    frame = (
        pl.read_parquet(outcome.run_dir / "payouts.parquet")
        .sort("payable_amount", "plan_id", descending=[True, False])
        .head(limit)
        .select("plan_id", "mpn_id", "currency", "payable_amount", "outcome", "reason")
    )
    return [
        {key: "" if value is None else str(value) for key, value in row.items()}
        for row in frame.iter_rows(named=True)
    ]


@flow(name=FLOW_NAME, log_prints=False, persist_result=False)
def monthly_payout(
    month: str | None = None,
    input_dir: str = "data/sample",
    output_dir: str = "data/output",
    rules: str | None = None,
    reason: str | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Publish the payout, exception and payment files of one earning month (default: the
    previous calendar month, as the scheduled run on the 1st wants)."""
    check_reason(reason)
    options = RunOptions(
        month=month or previous_month(datetime.now(UTC).date()),
        input_dir=Path(input_dir),
        output_dir=Path(output_dir),
        rules_path=Path(rules) if rules else None,
        reason=reason,
        strict=strict,
    )
    check_input_folder(input_dir)
    outcome = run_month_task(options, _REPORTER.get("report"))
    create_markdown_artifact(
        summary_markdown(outcome), key=SUMMARY_KEY, description=f"coop-payouts {outcome.month}"
    )
    rows = top_payouts(outcome)
    if rows:
        create_table_artifact(rows, key=TOP_PAYOUTS_KEY, description=f"top payouts {outcome.month}")
    summary = asdict(outcome)
    summary["run_dir"] = str(outcome.run_dir) if outcome.run_dir else None
    return summary


# The CLI's progress display, handed to the task in-process (not a flow parameter).
_REPORTER: dict[str, Report] = {}


def set_reporter(report: Report | None) -> None:
    """Let the CLI show the steps of the run it started."""
    if report is None:
        _REPORTER.pop("report", None)
    else:
        _REPORTER["report"] = report


# prctl(2) option: the signal a process gets when the thread that started it dies.
PR_SET_PDEATHSIG = 1


def _dies_with(parent: int) -> Callable[[], None] | None:
    """A preexec hook that makes the child get SIGTERM when `parent` dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before the hook ran
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def _popen_dying_with_us(hook: Callable[[], None]) -> Callable[..., subprocess.Popen[Any]]:
    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(*args, preexec_fn=hook, **kwargs)

    return popen


def start_temporary_server() -> None:
    """With no PREFECT_API_URL, start Prefect's temporary server now, so that its process gets
    SIGTERM when this one dies, however it dies.

    Prefect stops its temporary server at a normal exit only (atexit); after a SIGKILL it kept
    running and listening. Prefect looks its server up by port in one registry, so the instance
    started here is the one every Prefect client of this process then uses. It is started from
    the main thread because the death signal follows the thread that started the child.
    """
    if PREFECT_API_URL.value():
        return
    # The server module takes seconds to import: only a run that starts the server pays it.
    from prefect.server.api import server as prefect_server

    class TemporaryServer(prefect_server.SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            hook = _dies_with(os.getpid())
            if hook is None:
                return super()._run_uvicorn_command()
            # Prefect builds the command and calls `subprocess.Popen` in its server module:
            # only that call gets the hook, and only for the time of the call.
            real_module = prefect_server.subprocess
            prefect_server.subprocess = types.SimpleNamespace(Popen=_popen_dying_with_us(hook))  # type: ignore[assignment]
            try:
                return super()._run_uvicorn_command()
            finally:
                prefect_server.subprocess = real_module

    TemporaryServer().start()
