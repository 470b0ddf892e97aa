"""Releasing in tests as an approver does: naming the batch (the run) they reviewed, which is
the month's published run at the time."""

from __future__ import annotations

from pathlib import Path

from flows.folder import OutputFolder, read_registry
from flows.release import Released, release_month


def published_run(out: Path, month: str) -> str:
    """The run that publishes `month` in `out` now ("none" if the month is not published)."""
    entry = read_registry(OutputFolder(out)).get(month)
    return entry.run_id if entry else "none"


def release(out: Path, month: str, approved_by: str, note: str = "") -> Released:
    """Release `month`'s batch as reviewed now: the published run's."""
    return release_month(out, month, approved_by, run_id=published_run(out, month), note=note)
