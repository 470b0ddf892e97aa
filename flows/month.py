"""One month's run as every stage sees it: what it was asked to do (`RunOptions`), its id,
rules and folders (`MonthRun`), and the progress log of long work (docs/README.md, "The
layers"). The runner (`flows/run.py`) makes a `MonthRun`; the stages (`flows/stages/`) take it."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from coop_rules.calendar import parse_month
from flows.defaults import DEFAULTS
from flows.errors import RunError, UsageError
from flows.folder import OutputFolder
from flows.records import Manifest
from flows.rules import RulesFile

# Progress of long work: the CLI shows it on a status line, the Prefect tasks in the run's log.
progress = logging.getLogger("coop_payouts")
progress.setLevel(logging.INFO)
progress.propagate = False


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
