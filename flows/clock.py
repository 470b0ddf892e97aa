"""The clock of the command line and of `run_month` (docs/operations.md, "Months that have not
ended"): the real time in UTC. Tests set it by replacing `now`; callers read it as `clock.now()`
so that they see the replacement."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)
