"""Releasing a month's payment batch (docs/payments.md, "Proposed, then released"): the ledger rows,
the bank file and who approved it, all at once under the output folder's lock, or nothing.

A release is staged in `.coop/staging`, then a journal names what goes where, then two renames
put the ledger file and the release folder in place. A process killed after the journal is
written is completed by the next command of any kind (`flows.publish.complete_release`, called
when the lock is taken and by `settle`): everything it renames was written in full before the
journal was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from coop_rules.money import to_money
from coop_rules.payments import ledger_rows
from flows import batches, io
from flows.errors import Refused, UsageError
from flows.publish import OutputFolder, complete_release, read_registry, run_lock
from schemas.outputs import Ledger


@dataclass(frozen=True)
class Released:
    """What a release did: released now, or had been released already."""

    status: str  # "released" | "already released"
    month: str
    payment_date: str
    message: str
    release: dict


def check_approver(approved_by: str) -> str:
    """The approver's name, or a usage error for a blank one."""
    name = approved_by.strip()
    if not name or not name.isprintable():
        raise UsageError("--approved-by: give the name of the person who approves the batch")
    return name


def release_month(output: Path, month: str, approved_by: str, note: str = "") -> Released:
    """Release the batch of `month`'s published run, or refuse (exit 4) with the reason."""
    name = check_approver(approved_by)
    if not output.is_dir():
        raise UsageError(f"--output {output}: no such folder")
    folder = OutputFolder(output)
    with run_lock(folder):
        registry = read_registry(folder)
        if month not in registry:
            raise Refused(f"--month {month}: {month} is not published in {output}; run it first")
        states = batches.batch_states(folder)
        state = states[month]
        if state.state == "released":
            release = state.released or {}
            return Released(
                "already released",
                month,
                state.payment_date,
                f"the batch of {month} (paid {state.payment_date}) was already released by "
                f"{release.get('approved_by')} at {release.get('released_at')}; nothing changed",
                release,
            )
        if state.state == "none":
            return _no_batch(folder, state)
        waiting = [m for m, s in states.items() if m < month and s.state in ("proposed", "stale")]
        if waiting:
            first = states[waiting[0]]
            raise Refused(
                f"--month {month}: the batch of {first.month} (paid {first.payment_date}) is not "
                "released yet; batches go out in order, so release it first"
            )
        if state.state == "stale":
            raise Refused(
                f"--month {month}: the batch of {month} is stale ({state.stale_because}); rerun "
                f"{month} (coop-payouts run --month {month}) and release the new batch"
            )
        release = _release(folder, month, state, name, note)
        return Released(
            "released",
            month,
            state.payment_date,
            f"the batch of {month} (paid {state.payment_date}) is released by {name}: "
            f"{_describe(release)}; bank file {batches.release_dir(folder, state.payment_date)}"
            "/payments.csv",
            release,
        )


def _no_batch(folder: OutputFolder, state: batches.BatchState) -> Released:
    """A month published behind a released batch proposes none. If its own batch was released
    (a correction after release), releasing it again changes nothing, like any second release;
    a month published late, whose payment date was never released, is refused."""
    month = state.month
    if state.released:
        release = state.released
        return Released(
            "already released",
            month,
            state.payment_date,
            f"the batch of {month} (paid {state.payment_date}) was already released by "
            f"{release.get('approved_by')} at {release.get('released_at')}; the run that "
            f"published {month} since proposes no batch: its difference goes to the next "
            "batch; nothing changed",
            release,
        )
    released = batches.releases(folder)
    behind = min((date for date in released if date >= state.payment_date), default=None)
    by = f", released by {released[behind].get('approved_by')}" if behind else ""
    raise Refused(
        f"--month {month}: {month} was published behind the batch of {behind or 'a later month'}"
        f"{by}, so it proposes no batch; its difference goes to the next batch"
    )


def _release(
    folder: OutputFolder, month: str, state: batches.BatchState, name: str, note: str = ""
) -> dict:
    run_dir = folder.run_dir(state.run_id)
    statements = pl.read_parquet(run_dir / "statements.parquet")
    released_at = datetime.now(UTC).replace(microsecond=0)
    ledger = ledger_rows(statements, name, released_at)
    Ledger.validate(ledger)
    bank_file = (run_dir / "payments.csv").read_bytes()
    release = {
        "run_id": state.run_id,
        "earning_month": month,
        "payment_date": state.payment_date,
        "approved_by": name,
        "note": note,
        "released_at": released_at.isoformat(),
        "totals": _totals(ledger),
        "bank_file_sha256": hashlib.sha256(bank_file).hexdigest(),
    }
    folder.staging.mkdir(parents=True, exist_ok=True)
    staged_dir = folder.staging / f"release-{state.payment_date}"
    staged_ledger = folder.staging / f"release-{state.payment_date}-ledger.parquet"
    shutil.rmtree(staged_dir, ignore_errors=True)
    staged_dir.mkdir()
    io.write_bytes_atomic(bank_file, staged_dir / "payments.csv")
    io.write_bytes_atomic(json.dumps(release, indent=2).encode(), staged_dir / "release.json")
    io.write_parquet_atomic(ledger.drop("payment_date"), staged_ledger)
    moves = [
        (staged_ledger, batches.ledger_file(folder, state.payment_date)),
        (staged_dir, batches.release_dir(folder, state.payment_date)),
    ]
    journal = [[str(a.relative_to(folder.root)), str(b.relative_to(folder.root))] for a, b in moves]
    io.write_bytes_atomic(json.dumps(journal).encode(), folder.release_journal)
    complete_release(folder)
    return release


def _totals(ledger: pl.DataFrame) -> list[dict]:
    """Per currency and kind: rows and amount, as text."""
    totals = (
        ledger.group_by("currency", "kind")
        .agg(pl.len().alias("rows"), to_money(pl.col("amount").sum()).alias("amount"))
        .sort("currency", "kind")
    )
    return [
        {
            "currency": r["currency"],
            "kind": r["kind"],
            "rows": r["rows"],
            "amount": str(r["amount"]),
        }
        for r in totals.iter_rows(named=True)
    ]


def _describe(release: dict) -> str:
    parts = [
        f"{t['kind'].lower()} {t['currency']} {t['amount']} ({t['rows']})"
        for t in release["totals"]
    ]
    return ", ".join(parts) or "no payment (a header-only bank file)"
