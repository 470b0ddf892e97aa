"""The runs of an output folder, which one publishes each month and the state of its payment
batch (docs/operations.md, `coop-payouts history`; docs/payments.md, "Approval in Prefect, and
history"): the rows `history` prints, as a table or as JSON."""

from __future__ import annotations

import json

from pydantic import BaseModel

from flows.batches import BatchState, batch_states
from flows.folder import OutputFolder, list_runs, read_registry
from flows.manifest import Table
from flows.records import Manifest

COLUMNS = ("month", "run_id", "published", "started_at", "supersedes", "reason", "batch")


class HistoryRow(BaseModel):
    """One run as `history` shows it; `history --json` prints these keys in this order."""

    month: str
    run_id: str
    published: bool
    started_at: str
    supersedes: str | None
    reason: str | None
    batch: str
    released_by: str | None
    released_at: str | None
    released_run: str | None
    difference_to_next_batch: bool


def history_rows(folder: OutputFolder, month: str | None = None) -> list[HistoryRow]:
    """Every run of the folder (or of one month), oldest first, with its batch's state."""
    registry = read_registry(folder)
    states = batch_states(folder)
    rows = []
    for manifest in list_runs(folder):
        if month and manifest.earning_month != month:
            continue
        entry = registry.get(manifest.earning_month)
        is_published = entry is not None and entry.run_id == manifest.run_id
        rows.append(run_row(manifest, is_published, states.get(manifest.earning_month)))
    return rows


def run_row(manifest: Manifest, is_published: bool, state: BatchState | None) -> HistoryRow:
    """One run's row: what was paid stays visible after a rerun (docs/payments.md, "Approval in
    Prefect, and history"), on the published run and on the run that was released."""
    paid = state.released_run if state is not None else None
    shows_release = paid is not None and (is_published or paid == manifest.run_id)
    next_batch = is_published and state is not None and state.difference_to_next_batch
    return HistoryRow(
        month=manifest.earning_month,
        run_id=manifest.run_id,
        published=is_published,
        started_at=manifest.started_at,
        supersedes=manifest.supersedes,
        reason=manifest.reason,
        batch=batch_text(state, is_published, shows_release),
        released_by=state.released_by if state and shows_release else None,
        released_at=state.released_at if state and shows_release else None,
        released_run=paid if shows_release else None,
        difference_to_next_batch=bool(next_batch),
    )


def batch_text(state: BatchState | None, is_published: bool, shows_release: bool) -> str:
    """The batch column: released (by whom, when, which run), proposed, stale or none, and
    whether the run's difference goes to the next batch."""
    released = (
        f"released by {state.released_by} at {state.released_at} (run {state.released_run})"
        if state is not None and shows_release
        else ""
    )
    if not is_published or state is None:
        return released
    batch = released or state.state
    if state.difference_to_next_batch and not released:
        batch += f": published behind the released batch of {state.behind or 'a later month'}"
    if state.difference_to_next_batch:
        batch += "; difference to the next batch"
    if state.stale_because:
        batch += f" ({state.stale_because})"
    return batch


def history_json(rows: list[HistoryRow]) -> str:
    """The rows as `history --json` prints them."""
    return json.dumps([row.model_dump(mode="json") for row in rows], indent=2) + "\n"


def history_table(rows: list[HistoryRow], title: str) -> Table:
    """The rows as the table `history` shows."""
    shown = [
        tuple(
            ("yes" if row.published else "") if key == "published" else str(getattr(row, key) or "")
            for key in COLUMNS
        )
        for row in rows
    ]
    return Table(title, COLUMNS, shown, heading=("month", "run_id"))
