"""One month, end to end, as a sequence of named stages (docs/README.md, "The layers").

    read -> validate -> route -> decide -> propose payments -> publish

Each stage is a plain function in `flows/stages/` that takes the run's `MonthRun` and the small
summaries of the stages before it, reads what it needs from disk (the input files, or the work
files of the stages before it), calls the pure stage of `pipeline/`, and writes its result to
the run's work folder. `run_month` calls them in order under the output folder's lock; the Prefect
flow (`flows/orchestration.py`) calls the very same sequence with each stage wrapped in a task,
so the tests and production share one entry point and the UI shows one task run per stage.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import polars as pl

from coop_rules.calendar import parse_month
from flows import clock
from flows.chain import verified_releases
from flows.defaults import DEFAULTS
from flows.errors import OutputUnusable, RunError, UsageError
from flows.manifest import Manifest
from flows.options import check_month_ended, check_output
from flows.publish import OutputFolder, run_lock
from flows.rules import RulesFile, load_rules

# Progress of long work: the CLI shows it on a status line, the Prefect tasks in the run's log.
progress = logging.getLogger("coop_payouts")
progress.setLevel(logging.INFO)
progress.propagate = False

T = TypeVar("T")
StageWrapper = Callable[[Callable[..., T]], Callable[..., T]]


@dataclass(frozen=True)
class RunOptions:
    """What one `coop-payouts run` was asked to do."""

    month: str
    input_dir: Path = DEFAULTS.input_dir
    output_dir: Path = DEFAULTS.output_dir
    rules_path: Path | None = None
    reason: str | None = None
    strict: bool = False
    allow_empty: bool = False
    chunk_rows: int = DEFAULTS.chunk_rows
    # `coop-payouts check`: every stage but publish; nothing is written to the output folder.
    dry_run: bool = False


@dataclass(frozen=True)
class MonthRun:
    """What every stage of one run is given: the options, the run's id and its rules."""

    options: RunOptions
    run_id: str
    started_at: str
    rules: RulesFile
    # Where a dry run writes its work files when the output folder holds no staging of its own.
    scratch: Path | None = None

    @property
    def month(self) -> str:
        return self.options.month

    @property
    def folder(self) -> OutputFolder:
        return OutputFolder(self.options.output_dir)

    @property
    def staging(self) -> Path:
        """Where the run's unpublished files go: the output folder's staging, or the scratch."""
        return self.scratch or self.folder.staging

    @property
    def work(self) -> Path:
        """The stages' hand-over files: never published, removed when the run ends."""
        return self.staging / f"{self.run_id}.work"

    @property
    def staged(self) -> Path:
        """The run folder being written; renamed into runs/ when published."""
        return self.staging / self.run_id


@dataclass
class RunOutcome:
    """What a run did: published, or unchanged; what a person and Prefect are shown."""

    status: str  # "published" | "unchanged" | "checked" (a dry run)
    month: str
    run_id: str
    run_dir: Path | None = None
    manifest: Manifest | None = None
    message: str = ""
    notes: list[str] = field(default_factory=list)


def validate_month(month: str) -> str:
    """`month` if it is a real month YYYY-MM in ASCII digits, else a usage error."""
    try:
        parse_month(month)
    except ValueError as exc:
        raise UsageError(f"--month: {exc}") from None
    return month


def new_run_id(month: str) -> str:
    """A run id that sorts by month and time and is safe as a folder name."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{month}_{stamp}_{secrets.token_hex(3)}"


@contextmanager
def sums_fit(month: str) -> Iterator[None]:
    """A sum of valid amounts beyond Decimal(18, 2) stops the run: never wrapped or rounded."""
    try:
        yield
    except pl.exceptions.InvalidOperationError as exc:
        raise RunError(
            f"a sum of {month}'s amounts does not fit Decimal(18, 2) "
            f"(16 digits before the point): {str(exc).splitlines()[0]}; nothing was published"
        ) from None


def _direct(stage: Callable[..., T]) -> Callable[..., T]:
    return stage


def run_month(options: RunOptions, as_stage: StageWrapper = _direct) -> RunOutcome:
    """One month, end to end, under the output folder's lock.

    `as_stage` wraps each stage before it is called (the Prefect flow passes one that makes a
    task of it). Raises a `RunError` subclass for every outcome but published, unchanged or
    (with `options.dry_run`) checked: a dry run stops before stage publish.
    """
    from flows.stages import decide, propose, publish, read, route, validate

    validate_month(options.month)
    check_month_ended(options.month, clock.now())
    rules = load_rules(options.rules_path)
    folder = OutputFolder(options.output_dir)
    with _held(folder, options.dry_run) as scratch:
        # Nothing under ledger/ or releases/ is trusted as found (docs/payments.md).
        verified_releases(folder)
        run = MonthRun(
            options=options,
            run_id=new_run_id(options.month),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            rules=rules,
            scratch=scratch,
        )
        try:
            inputs = as_stage(read.read_inputs)(run)
            checked = as_stage(validate.validate_inputs)(run, inputs)
            if checked.unchanged_run_id:
                return RunOutcome(
                    "unchanged",
                    run.month,
                    checked.unchanged_run_id,
                    folder.run_dir(checked.unchanged_run_id),
                    message=(
                        f"{run.month} unchanged: run {checked.unchanged_run_id} already "
                        "published these inputs and rules"
                    ),
                )
            routed = as_stage(route.route_earnings)(run, inputs)
            decided = as_stage(decide.decide_payouts)(run, inputs, checked, routed)
            proposed = as_stage(propose.propose_payments)(run, decided)
            if options.dry_run:
                return publish.dry_run_outcome(run, inputs, checked, routed, decided, proposed)
            return as_stage(publish.publish_month)(run, inputs, checked, routed, decided, proposed)
        finally:
            _clean(run)


@contextmanager
def _held(folder: OutputFolder, dry_run: bool) -> Iterator[Path | None]:
    """The output folder's lock for the run (an interrupted publish settled first); for a dry
    run in a folder no run has used (or one it may not write), a scratch folder instead, so
    that checking creates nothing in the output folder."""
    if not dry_run or (folder.state.is_dir() and os.access(folder.state, os.W_OK | os.X_OK)):
        with run_lock(folder):
            yield None
        return
    check_output(folder.root, write=False, missing_ok=True)
    if folder.journal.exists():
        raise OutputUnusable(
            f"--output {folder.root}: an interrupted publish is pending and the folder is "
            "read-only; make it writable so the next command can settle it"
        )
    with tempfile.TemporaryDirectory(prefix="coop-payouts-check-") as scratch:
        yield Path(scratch)


def _clean(run: MonthRun) -> None:
    """Remove what the run left in staging (published runs have been renamed out of it)."""
    shutil.rmtree(run.work, ignore_errors=True)
    shutil.rmtree(run.staged, ignore_errors=True)
    for leftover in run.staging.glob(f"{run.run_id}-*"):
        leftover.unlink(missing_ok=True)
