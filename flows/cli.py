"""The `coop-payouts` command line (docs/operations.md): run, check, backfill, history,
release, serve.

Exit codes: 0 published or unchanged; 2 usage error; 3 input rejected; 4 refused; 1 unexpected.
Every non-zero exit prints one plain sentence on stderr; a traceback only with --debug.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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
# polars' allocator (jemalloc) keeps freed pages for 0.5 s, then keeps them lazily freed (still
# resident) for 1 s more: each stage then starts on top of what the one before had just freed.
# Returned after 0.25 s, straight to the system, they no longer add up across stages, for
# about 2 s more system time at 10M rows (docs/performance.md). Read when polars is first imported,
# so set before; an operator's own setting of the variable is kept, but not polars' defaults
# alone, which a parent process that imported polars passes on to its children.
ALLOCATOR_SETTINGS = "dirty_decay_ms:250,muzzy_decay_ms:0"
POLARS_ALLOCATOR_DEFAULTS = "dirty_decay_ms:500,muzzy_decay_ms:1000"
if os.environ.get("_RJEM_MALLOC_CONF", POLARS_ALLOCATOR_DEFAULTS) == POLARS_ALLOCATOR_DEFAULTS:
    os.environ["_RJEM_MALLOC_CONF"] = ALLOCATOR_SETTINGS

import typer  # noqa: E402
from rich.console import Console  # noqa: E402

from coop_rules.calendar import months_between, previous_month  # noqa: E402
from flows import clock, display, interrupts  # noqa: E402
from flows.defaults import DEFAULTS  # noqa: E402
from flows.errors import RunError, UsageError  # noqa: E402
from flows.manifest import Table as ShownTable  # noqa: E402
from flows.manifest import shown_amount, summary_sentences, summary_tables  # noqa: E402
from flows.month import RunOptions, progress, validate_month  # noqa: E402
from flows.options import (  # noqa: E402
    check_input,
    check_month_ended,
    check_output,
    check_run_options,
)
from flows.records import Manifest  # noqa: E402
from flows.run import run_month  # noqa: E402

app = typer.Typer(
    add_completion=False,
    # Plain help: flags without a `<bool>` placeholder, readable on any terminal or in a pipe.
    rich_markup_mode=None,
    no_args_is_help=True,
    help="coop-payouts: monthly co-op incentive payouts, paid on the 15th.",
)


class _Stdout(Console):
    """stdout, where a reader that goes away early (`| head -1`) is not an error: the rest of
    the output goes nowhere and the command ends with its own exit code (rich's default would
    exit 1 at once, in the middle of a backfill)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        _reader_gone()


out = _Stdout()
err = Console(stderr=True)
if not out.is_terminal:
    # Into a file or a pipe, a table is one line per row, as wide as its rows (flows/display.py).
    out.width = 10_000

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
AllowEmptyOpt = Annotated[
    bool,
    typer.Option(
        "--allow-empty", help="Publish the month even if it has no earnings rows (else exit 3)."
    ),
]
CheckEmptyOpt = Annotated[
    bool,
    typer.Option(
        "--allow-empty", help="Check the month even if it has no earnings rows (else exit 3)."
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]


def _version(asked: bool) -> None:
    if asked:
        from flows.records import code_version

        _say(f"coop-payouts {code_version()}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """coop-payouts: monthly co-op incentive payouts, paid on the 15th."""


def _reader_gone() -> None:
    """The reader of stdout went away (`| head -1`): send the rest of the output nowhere, so
    the command finishes its work and exits with its own code (the recipe of Python's docs
    on SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _say(*shown: Any) -> None:
    """Print on stdout; a closed pipe is not an error. A sentence is never wrapped (a pipe or a
    file reads it whole), a table fits the terminal."""
    from rich.text import Text

    try:
        out.print(*shown, soft_wrap=all(isinstance(item, str | Text) for item in shown))
        out.file.flush()
    except BrokenPipeError:
        out.on_broken_pipe()


def _fail(error: BaseException, debug: bool) -> None:
    """Print one plain sentence and exit with the error's code."""
    signum = interrupts.received()
    if signum is not None:
        # Whatever the interrupt became on its way (a Prefect client error once the server
        # stopped), it is an interrupt: exit 130 or 143 (docs/operations.md, "Stopping a command").
        raise interrupts.Interrupted(signum) from error
    if isinstance(error, BrokenPipeError):
        # Only stdout is ever a pipe a reader closes early; the work itself was done.
        out.on_broken_pipe()
        raise typer.Exit(0)
    if debug:
        err.print_exception()
    code = error.exit_code if isinstance(error, RunError) else 1
    sentence = str(error) if isinstance(error, RunError) else f"unexpected error: {error!r}"
    err.print(f"coop-payouts: {sentence}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


class _StatusLine(logging.Handler):
    """The run's progress lines, shown on one status line of the terminal."""

    def __init__(self, status: Any) -> None:
        super().__init__()
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        self.status.update(_plain(record.getMessage()))


@contextmanager
def _progress(first: str = "starting Prefect") -> Iterator[None]:
    """A status line on a terminal; nothing when output goes to a file or a pipe."""
    if not out.is_terminal:
        yield
        return
    with out.status(first) as status:
        handler = _StatusLine(status)
        progress.addHandler(handler)
        try:
            yield
        finally:
            progress.removeHandler(handler)


def _plain(text: str) -> Any:
    """Text from inputs or options, shown as it is: no markup, no terminal escape sequences."""
    from rich.text import Text

    cleaned = "".join(c if c.isprintable() or c == "\n" else f"\\x{ord(c):02x}" for c in text)
    return Text(cleaned)


def _summary(summary: dict[str, Any]) -> None:
    """The closing summary of a run: counts and totals per currency, where the files went."""
    _say(_plain(summary["message"]))
    if summary["status"] != "published" or not summary["run_dir"]:
        return
    manifest = Manifest.read(Path(summary["run_dir"]) / "manifest.json")
    _tables(manifest)
    _say(_plain(f"run folder: {summary['run_dir']}"))


def _tables(manifest: Manifest) -> None:
    """A run's tables (totals, exceptions by code, the batch) and its reconciliation lines."""
    for shown in summary_tables(manifest):
        if shown.rows:
            _show(shown)
    for sentence in summary_sentences(manifest):
        _say(_plain(sentence))


def _show(shown: ShownTable) -> None:
    """A table, every value whole (flows/display.py); a closed pipe is not an error."""
    try:
        display.show(out, shown)
        out.file.flush()
    except BrokenPipeError:
        out.on_broken_pipe()


def _refuse_early(
    months: list[str], input_dir: Path, output: Path, rules: Path | None, reason: str | None
) -> None:
    """Refusals a run would reach only after Prefect starts (seconds), made at once."""
    from flows.rules import load_rules
    from flows.stages.read import refuse_early

    refuse_early(months, input_dir, output, load_rules(rules), reason)


def _run_one(
    month: str,
    input_dir: Path,
    output: Path,
    rules: Path | None,
    reason: str | None,
    strict: bool,
    allow_empty: bool = False,
) -> dict[str, Any]:
    from flows.orchestration import month_tags, monthly_payout
    from flows.prefect_server import start_temporary_server

    with _progress(), month_tags(month):
        start_temporary_server()
        # Without await_approval the flow returns its summary, never a state.
        return monthly_payout(  # type: ignore[return-value]
            month=month,
            input_dir=str(input_dir),
            output_dir=str(output),
            rules=str(rules) if rules else None,
            reason=reason,
            strict=strict,
            allow_empty=allow_empty,
        )


@app.command()
def run(
    month: MonthOpt = None,
    input_dir: InputOpt = DEFAULTS.input_dir,
    output: OutputOpt = DEFAULTS.output_dir,
    rules: RulesOpt = None,
    reason: ReasonOpt = None,
    strict: StrictOpt = False,
    allow_empty: AllowEmptyOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Publish one earning month's payout, exception and payment files."""
    try:
        now = clock.now()
        chosen = check_month_ended(validate_month(month or previous_month(now.date())), now)
        check_run_options(input_dir, output, reason)
        _refuse_early([chosen], input_dir, output, rules, reason)
        _summary(_run_one(chosen, input_dir, output, rules, reason, strict, allow_empty))
    except typer.Exit:
        raise
    except Exception as error:  # every failure ends as one sentence and an exit code
        _fail(error, debug)


@app.command()
def check(
    month: MonthOpt = None,
    input_dir: InputOpt = DEFAULTS.input_dir,
    output: OutputOpt = DEFAULTS.output_dir,
    rules: RulesOpt = None,
    allow_empty: CheckEmptyOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Dry run: read, validate and compute the month as `run` would, print the same summary
    with the exceptions by code, and publish nothing (exit 0, or 3 if an input file is
    rejected). Prefect is not started: the check is not a flow run and shows nothing in the
    Prefect UI. An --output folder that does not exist yet is fine (nothing is created)."""
    try:
        now = clock.now()
        chosen = check_month_ended(validate_month(month or previous_month(now.date())), now)
        check_input(input_dir)
        check_output(output, write=False, missing_ok=True)
        options = RunOptions(
            month=chosen,
            input_dir=input_dir,
            output_dir=output,
            rules_path=rules,
            allow_empty=allow_empty,
            dry_run=True,
        )
        with _progress("checking"):
            outcome = run_month(options)
        _say(_plain(outcome.message))
        manifest = outcome.manifest
        if manifest is None and outcome.run_dir is not None:
            manifest = Manifest.read(outcome.run_dir / "manifest.json")
        if manifest is not None:
            _tables(manifest)
        for note in outcome.notes:
            _say(_plain(note))
    except typer.Exit:
        raise
    except Exception as error:
        _fail(error, debug)


@app.command()
def backfill(
    from_month: Annotated[str, typer.Option("--from", help="First month YYYY-MM.")],
    to_month: Annotated[str, typer.Option("--to", help="Last month YYYY-MM.")],
    input_dir: InputOpt = DEFAULTS.input_dir,
    output: OutputOpt = DEFAULTS.output_dir,
    rules: RulesOpt = None,
    reason: ReasonOpt = None,
    strict: StrictOpt = False,
    allow_empty: AllowEmptyOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run the months from --from to --to in order, oldest first, in one process."""
    try:
        validate_month(from_month)
        validate_month(to_month)
        months = months_between(from_month, to_month)
        if not months:
            raise UsageError(f"--to {to_month} is before --from {from_month}")
        check_month_ended(to_month, clock.now(), "--to")
        check_run_options(input_dir, output, reason)
        _refuse_early(months, input_dir, output, rules, reason)
        for month in months:
            _summary(_run_one(month, input_dir, output, rules, reason, strict, allow_empty))
    except typer.Exit:
        raise
    except Exception as error:
        _fail(error, debug)


@app.command()
def history(
    month: Annotated[
        str | None,
        typer.Option("--month", help="Only this earning month YYYY-MM (default: all months)."),
    ] = None,
    output: OutputOpt = DEFAULTS.output_dir,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    debug: DebugOpt = False,
) -> None:
    """List the runs, which one is published per month, and the state of its payment batch."""
    from flows.folder import OutputFolder, settle
    from flows.history import history_json, history_rows, history_table

    try:
        if month:
            validate_month(month)
        check_output(output, write=False)
        folder = OutputFolder(output)
        settled = settle(folder)
        if settled:
            _say(_plain(f"{settled} first"))
        rows = history_rows(folder, month)
        if as_json:
            try:
                sys.stdout.write(history_json(rows))
                sys.stdout.flush()
            except BrokenPipeError:
                out.on_broken_pipe()
            return
        _show(history_table(rows, f"runs in {output}"))
    except typer.Exit:
        raise
    except Exception as error:
        _fail(error, debug)


@app.command()
def statement(
    mpn_id: Annotated[str, typer.Option("--mpn-id", help="The partner's MPN ID.")],
    currency: Annotated[
        str | None, typer.Option("--currency", help="Only this currency (default: all).")
    ] = None,
    output: OutputOpt = DEFAULTS.output_dir,
    plans: Annotated[
        bool, typer.Option("--plans", help="Also list the plans behind each month's payable.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    debug: DebugOpt = False,
) -> None:
    """One partner's money, payment date by payment date: the batch's run and status, payable
    that month, brought forward, owed, paid, forfeited, carried, and who released it."""
    import json

    from flows import statement as partner
    from flows.folder import OutputFolder, settle

    try:
        partner.check_partner(mpn_id, currency)
        check_output(output, write=False)
        folder = OutputFolder(output)
        settled = settle(folder)
        if settled and not as_json:
            _say(_plain(f"{settled} first"))
        lines = partner.partner_statement(folder, mpn_id, currency)
        if as_json:
            try:
                sys.stdout.write(json.dumps(partner.as_json(lines, plans), indent=2) + "\n")
                sys.stdout.flush()
            except BrokenPipeError:
                out.on_broken_pipe()
            return
        which = f"{mpn_id} {currency}" if currency else mpn_id
        if not lines:
            _say(_plain(f"no statement rows for {which} in {output}"))
            return
        columns = tuple(name.replace("_", " ") for name in partner.COLUMNS)
        rows = [tuple(line.shown(column) for column in partner.COLUMNS) for line in lines]
        numeric = tuple(name.replace("_", " ") for name in partner.AMOUNTS)
        heading = ("payment date", "currency", "earning month")
        _show(ShownTable(f"statement of {which} in {output}", columns, rows, numeric, heading))
        if plans:
            for line in lines:
                shown = [
                    tuple(
                        shown_amount(str(value), str(line.row["currency"]), line.digits)
                        if name.endswith("_amount")
                        else ""
                        if value is None
                        else str(value)
                        for name, value in plan.items()
                    )
                    for plan in line.plans.iter_rows(named=True)
                ]
                title = (
                    f"plans of {line.row['earning_month']} {line.row['currency']} "
                    f"(paid {line.row['payment_date']})"
                )
                _show(ShownTable(title, partner.PLAN_COLUMNS, shown, heading=("plan_id",)))
    except typer.Exit:
        raise
    except Exception as error:
        _fail(error, debug)


@app.command()
def release(
    month: Annotated[str, typer.Option("--month", help="Earning month YYYY-MM of the batch.")],
    run_id: Annotated[
        str,
        typer.Option(
            "--run",
            help="The run whose batch you reviewed (printed by run, check and history); "
            "refused if the month was republished since.",
        ),
    ],
    approved_by: Annotated[
        str, typer.Option("--approved-by", help="Name of the person who approves the batch.")
    ],
    output: OutputOpt = DEFAULTS.output_dir,
    note: Annotated[
        str, typer.Option("--note", help="Anything finance should know, kept in release.json.")
    ] = "",
    debug: DebugOpt = False,
) -> None:
    """Release the payment batch of a published month that run --run proposed: ledger, bank
    file, release record."""
    from flows.release import check_approver, release_month

    try:
        check_approver(approved_by)
        validate_month(month)
        check_month_ended(month, clock.now())
        done = release_month(output, month, approved_by, run_id=run_id, note=note)
        _say(_plain(done.message))
    except typer.Exit:
        raise
    except Exception as error:
        _fail(error, debug)


@app.command()
def serve(
    input_dir: InputOpt = DEFAULTS.input_dir,
    output: OutputOpt = DEFAULTS.output_dir,
    rules: RulesOpt = None,
    approval_timeout_hours: Annotated[
        float,
        typer.Option(
            "--approval-timeout-hours",
            help="How long each run waits for a person to approve its payment batch.",
        ),
    ] = DEFAULTS.approval_timeout_hours,
    debug: DebugOpt = False,
) -> None:
    """Serve the monthly deployment (cron 0 6 1 * *, UTC) from this process, until stopped.

    Needs a running Prefect server (PREFECT_API_URL).

    The folders default to the sample's: pass the real --input and --output.

    Prints one line per flow run it starts.
    """
    try:
        if approval_timeout_hours <= 0:
            raise UsageError("--approval-timeout-hours: give a number of hours above 0")
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():
            # A temporary server would vanish with this process, and its schedule with it.
            raise UsageError(
                "serve needs a running Prefect server: start `prefect server start` and set "
                "PREFECT_API_URL (for example http://127.0.0.1:4200/api)"
            )
        from flows.schedule import serve_monthly

        serve_monthly(
            str(input_dir.absolute()),
            str(output.absolute()),
            str(rules.absolute()) if rules else None,
            approval_timeout_hours,
        )
    except Exception as error:
        _fail(error, debug)


def _command() -> str:
    """The command named on the command line (run, release, ...), or "" if none."""
    return next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")


def _interrupted(stop: BaseException, signum: int) -> None:
    """Exit 130 (SIGINT) or 143 (SIGTERM) with one sentence saying what was published or
    released before the signal (docs/operations.md, "Stopping a command")."""
    if "--debug" in sys.argv and not isinstance(stop, SystemExit):
        import traceback

        traceback.print_exception(stop)
    interrupts.announce(_command())
    raise SystemExit(128 + signum)


def main() -> None:
    if _command() != "serve":  # serve stops its flow runs by Prefect's own handlers
        interrupts.install(_command(), debug="--debug" in sys.argv)
    try:
        app()
    except BaseException as stop:  # SystemExit too: a command that ended after a signal
        interrupts.stop_raising()
        signum = interrupts.received()
        if signum is None:
            raise
        _interrupted(stop, signum)
    finally:
        interrupts.stop_raising()
        # Python flushes stdout once more at exit: a reader gone by then is not an error.
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            out.on_broken_pipe()


if __name__ == "__main__":
    main()
