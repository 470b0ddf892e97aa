"""The `coop-payouts` command line (SPEC section 2): run, backfill, serve, history.

Exit codes: 0 published or unchanged; 2 usage error; 3 input rejected; 4 refused; 1 unexpected.
Every non-zero exit prints one plain sentence on stderr; a traceback only with --debug.
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

# Prefect's console log repeats every state and prints tracebacks; the CLI prints its own
# summary and one sentence per error, so the console handler only speaks under --debug. The log
# still reaches the Prefect server (its API handler is untouched), where the UI shows it.
os.environ.setdefault(
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING" if "--debug" in sys.argv else "CRITICAL"
)
# The temporary server's telemetry heartbeat only adds noise (sqlite lock errors) to a run.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The temporary server answers in 20 s on an idle machine, not always on a busy one.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import typer  # noqa: E402
from rich import box  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from coop_rules.calendar import months_between, previous_month  # noqa: E402
from flows.errors import RunError, UsageError  # noqa: E402
from flows.monthly import validate_month  # noqa: E402
from flows.options import check_output, check_run_options  # noqa: E402

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="coop-payouts: monthly co-op incentive payouts, paid on the 15th.",
)
out = Console()
err = Console(stderr=True)

MonthOpt = Annotated[
    str | None,
    typer.Option("--month", help="Earning month YYYY-MM (default: previous month, UTC)."),
]
InputOpt = Annotated[Path, typer.Option("--input", help="Folder of input files.")]
OutputOpt = Annotated[Path, typer.Option("--output", help="Output folder.")]
RulesOpt = Annotated[
    Path | None, typer.Option("--rules", help="Rules TOML file (default: coop_rules/rules.toml).")
]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="Why a published month is being replaced.")
]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="Publish nothing if any row has an exception (exit 3).")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]


def _fail(error: BaseException, debug: bool) -> None:
    """Print one plain sentence and exit with the error's code."""
    if debug:
        err.print_exception()
    code = error.exit_code if isinstance(error, RunError) else 1
    sentence = str(error) if isinstance(error, RunError) else f"unexpected error: {error!r}"
    err.print(f"coop-payouts: {sentence}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _progress(enabled: bool) -> tuple[Any, Any]:
    """A status line on a terminal; nothing when output goes to a file or a pipe."""
    if not (enabled and out.is_terminal):
        return nullcontext(), None
    status = out.status("starting Prefect")
    return status, lambda step: status.update(step)


def _summary(summary: dict[str, Any]) -> None:
    """The closing summary: counts and totals per currency, and where the files went."""
    manifest = summary.get("manifest") or {}
    out.print(summary["message"], markup=False, highlight=False)
    if not manifest:
        return
    table = Table(
        title=f"{summary['month']} paid on {manifest['payment_date']}",
        box=box.HEAVY_HEAD if out.is_terminal else box.ASCII,
    )
    for name in ("currency", "outcome", "plans", "earned", "payable", "unpaid"):
        table.add_column(name, justify="right" if name not in ("currency", "outcome") else "left")
    for row in manifest["totals"]:
        table.add_row(
            row["currency"],
            row["outcome"],
            str(row["plans"]),
            row["earned_amount"],
            row["payable_amount"],
            row["unpaid_amount"],
        )
    out.print(table)
    rec = manifest["reconciliation"]
    exceptions = sum(row["rows"] for row in manifest["exceptions_by_code"])
    out.print(
        f"earnings rows in scope {rec['in_scope_rows']}: routed {rec['routed_rows']}, "
        f"with exceptions {rec['exception_rows']}; exceptions in all files {exceptions}; "
        f"reconciliation {'holds' if rec['holds'] else 'FAILS'}",
        markup=False,
        highlight=False,
    )
    out.print(f"run folder: {summary['run_dir']}", markup=False, highlight=False)


def _run_one(
    month: str,
    input_dir: Path,
    output: Path,
    rules: Path | None,
    reason: str | None,
    strict: bool,
) -> dict[str, Any]:
    from flows.orchestration import monthly_payout, set_reporter, start_temporary_server

    status, report = _progress(True)
    with status:
        start_temporary_server()
        set_reporter(report)
        try:
            return monthly_payout(
                month=month,
                input_dir=str(input_dir),
                output_dir=str(output),
                rules=str(rules) if rules else None,
                reason=reason,
                strict=strict,
            )
        finally:
            set_reporter(None)


@app.command()
def run(
    month: MonthOpt = None,
    input_dir: InputOpt = Path("data/sample"),
    output: OutputOpt = Path("data/output"),
    rules: RulesOpt = None,
    reason: ReasonOpt = None,
    strict: StrictOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Publish one earning month's payout, exception and payment files."""
    try:
        chosen = validate_month(month or previous_month(datetime.now(UTC).date()))
        check_run_options(input_dir, output, reason)
        _summary(_run_one(chosen, input_dir, output, rules, reason, strict))
    except typer.Exit:
        raise
    except Exception as error:  # every failure ends as one sentence and an exit code
        _fail(error, debug)


@app.command()
def backfill(
    from_month: Annotated[str, typer.Option("--from", help="First month YYYY-MM.")],
    to_month: Annotated[str, typer.Option("--to", help="Last month YYYY-MM.")],
    input_dir: InputOpt = Path("data/sample"),
    output: OutputOpt = Path("data/output"),
    rules: RulesOpt = None,
    reason: ReasonOpt = None,
    strict: StrictOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run the months from --from to --to in order, oldest first, in one process."""
    try:
        validate_month(from_month)
        validate_month(to_month)
        months = months_between(from_month, to_month)
        if not months:
            raise UsageError(f"--to {to_month} is before --from {from_month}")
        check_run_options(input_dir, output, reason)
        for month in months:
            _summary(_run_one(month, input_dir, output, rules, reason, strict))
    except typer.Exit:
        raise
    except Exception as error:
        _fail(error, debug)


@app.command()
def history(
    month: MonthOpt = None,
    output: OutputOpt = Path("data/output"),
    debug: DebugOpt = False,
) -> None:
    """List the runs in the output folder and which one is published per month."""
    from flows.publish import OutputFolder, list_runs, read_registry, settle

    try:
        if month:
            validate_month(month)
        check_output(output, write=False)
        folder = OutputFolder(output)
        settled = settle(folder)
        if settled:
            out.print(f"{settled} first", markup=False, highlight=False)
        registry = read_registry(folder)
        table = Table(
            title=f"runs in {output}", box=box.HEAVY_HEAD if out.is_terminal else box.ASCII
        )
        for name in ("month", "run_id", "published", "started_at", "supersedes", "reason"):
            table.add_column(name)
        for manifest in list_runs(folder):
            if month and manifest["earning_month"] != month:
                continue
            published = registry.get(manifest["earning_month"], {}).get("run_id")
            table.add_row(
                manifest["earning_month"],
                manifest["run_id"],
                "yes" if published == manifest["run_id"] else "",
                manifest["started_at"],
                manifest.get("supersedes") or "",
                manifest.get("reason") or "",
            )
        out.print(table)
    except typer.Exit:
        raise
    except Exception as error:
        _fail(error, debug)


@app.command()
def serve(
    input_dir: InputOpt = Path("data/sample"),
    output: OutputOpt = Path("data/output"),
    debug: DebugOpt = False,
) -> None:
    """Serve the monthly deployment (cron 0 6 1 * *, UTC) from this process."""
    try:
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():
            # A temporary server would vanish with this process, and its schedule with it.
            raise UsageError(
                "serve needs a running Prefect server: start `prefect server start` and set "
                "PREFECT_API_URL (for example http://127.0.0.1:4200/api)"
            )
        from flows.schedule import serve_monthly

        serve_monthly(str(input_dir), str(output))
    except Exception as error:
        _fail(error, debug)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
