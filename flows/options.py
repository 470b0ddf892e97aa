"""Checks of the options a person gives (docs/operations.md), made before any work starts.

No Prefect here: a usage error is reported at once, without waiting for a Prefect server.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from coop_rules.calendar import add_months, parse_month
from flows.errors import OutputUnusable, UsageError


def check_input(input_dir: Path) -> Path:
    """--input must be an existing folder."""
    if not input_dir.is_dir():
        raise UsageError(f"--input {input_dir}: no such folder")
    return input_dir


def check_output(output: Path, *, write: bool = True, missing_ok: bool = False) -> Path:
    """--output must be a folder (or a path where one can be made), never the filesystem root
    nor a file; with `write`, one this process may write to. A missing folder is fine to write
    (the run makes it); a reader (`write=False`) needs it to exist unless `missing_ok` (a dry
    run of a first month: there is nothing to read yet)."""
    resolved = output.resolve()
    if resolved == Path(resolved.anchor):
        raise OutputUnusable(
            f"--output {output}: that is the filesystem root; name a folder for the payout files"
        )
    existing = next(path for path in (resolved, *resolved.parents) if path.exists())
    if not existing.is_dir():
        where = "it is a file" if existing == resolved else f"{existing} is a file"
        raise OutputUnusable(f"--output {output}: not a folder ({where})")
    if not write and not missing_ok and existing != resolved:
        raise UsageError(f"--output {output}: no such folder")
    if write and not os.access(existing, os.W_OK | os.X_OK):
        raise OutputUnusable(
            f"--output {output}: the folder {existing} is read-only; nothing can be published there"
        )
    return output


def check_month_ended(month: str, now: datetime, option: str = "--month") -> str:
    """`month` (a valid YYYY-MM) if it has ended at `now` (an aware time, judged in UTC), else a
    usage error: a month still under way would propose a batch that freezes every payment date
    before it (docs/operations.md, "Months that have not ended")."""
    next_month = parse_month(add_months(month, 1))
    if now.astimezone(UTC).date() < next_month:
        last_day = next_month - timedelta(days=1)
        raise UsageError(
            f"{option} {month}: the month has not ended; it ends on {last_day} (UTC) and can "
            f"be run from {next_month}"
        )
    return month


def check_reason(reason: str | None) -> str | None:
    """--reason, when given, must say something."""
    if reason is not None and not reason.strip():
        raise UsageError("--reason: empty; say in a few words why the month is being rerun")
    return reason


def check_run_options(input_dir: Path, output: Path, reason: str | None) -> None:
    """The folder and reason options of `run` and `backfill`, judged before Prefect starts."""
    check_input(input_dir)
    check_output(output)
    check_reason(reason)
