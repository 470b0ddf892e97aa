"""Releasing a month's payment batch (docs/payments.md, "Proposed, then released"): the ledger rows,
the bank file and who approved it, all at once under the output folder's lock, or nothing.

A release names the run whose batch the approver reviewed, and is refused if that is not the
month's published run. The run's bank file and statement are checked against its manifest, the
ledger and releases against the release chain (`flows.chain`), and the destinations before
anything moves. A release is staged in `.coop/staging`, then a journal names what goes where,
then three renames put the ledger file, the release folder and the chain's new head in place; a
rename that fails puts back those done before it. A process killed after the journal is
written is completed by the next command of any kind (`flows.folder.complete_release`, called
when the lock is taken and by `settle`): everything it renames was written in full before the
journal was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import unicodedata
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import polars as pl

from coop_rules.money import to_money
from coop_rules.payments import ledger_rows
from flows import batches, chain, files, interrupts
from flows.errors import ChainBroken, OutputUnusable, Refused, ReleaseNotPlaced, UsageError
from flows.folder import OutputFolder, read_registry, run_lock
from flows.manifest import currency_digits, shown_amount
from flows.records import Manifest, ReleaseJournal, ReleaseRecord, ReleaseTotal, record_bytes
from schemas.outputs import Ledger


@dataclass(frozen=True)
class Released:
    """What a release did: released now, or had been released already."""

    status: str  # "released" | "already released"
    month: str
    payment_date: str
    message: str
    release: ReleaseRecord


# Shown as nothing though Unicode files them as letters or symbols (docs/payments.md, "The
# approver's name"): the Hangul fillers and the Braille blank.
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _is_blank(char: str) -> bool:
    """A space of any script (Z*), a control, format, private-use, surrogate or unassigned code
    point (C*), or one of the blank letters."""
    return unicodedata.category(char)[0] in "ZC" or char in BLANK_LETTERS


def is_blank_name(text: str) -> bool:
    """Whether `text` shows no name at all: nothing but blanks of any kind (the release command
    and the approval form both refuse such a name)."""
    return all(_is_blank(char) for char in text)


def check_approver(approved_by: str) -> str:
    """The approver's name without the blanks around it, or a usage error for a name that
    shows nothing or holds a control character (a line break, a terminal escape)."""
    if is_blank_name(approved_by):
        raise UsageError("--approved-by: give the name of the person who approves the batch")
    first = next(i for i, char in enumerate(approved_by) if not _is_blank(char))
    last = next(i for i in reversed(range(len(approved_by))) if not _is_blank(approved_by[i]))
    name = approved_by[first : last + 1]
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise UsageError(
            "--approved-by: the name holds a control character (a line break, a tab or an "
            "escape); give the name as it is written"
        )
    return name


def release_month(
    output: Path, month: str, approved_by: str, *, run_id: str, note: str = ""
) -> Released:
    """Release the batch of `month` that run `run_id` proposed, the one the approver reviewed,
    or refuse (exit 4) with the reason (docs/payments.md, "A release names its batch")."""
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
        _check_run(folder, state, run_id)
        if state.state == "released" and state.released is not None:
            release = state.released
            return Released(
                "already released",
                month,
                state.payment_date,
                f"the batch of {month} (paid {state.payment_date}) was already released by "
                f"{release.approved_by} at {release.released_at}; nothing changed",
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
        totals = _describe(release, _digits(folder, state.run_id))
        bank_file = batches.release_dir(folder, state.payment_date) / "payments.csv"
        return Released(
            "released",
            month,
            state.payment_date,
            f"the batch of {month} (paid {state.payment_date}) is released by {name}: {totals}; "
            f"bank file {bank_file}",
            release,
        )


def _digits(folder: OutputFolder, run_id: str) -> dict[str, int]:
    return currency_digits(Manifest.read(folder.run_dir(run_id) / "manifest.json"))


def _check_run(folder: OutputFolder, state: batches.BatchState, run_id: str) -> None:
    """`run_id` must be the run that published `state.month` now: the batch the approver
    reviewed. The run a released batch came from is accepted too (releasing it again changes
    nothing)."""
    month, published = state.month, state.run_id
    if run_id == published or state.released_run == run_id:
        return
    manifest = folder.run_dir(run_id) / "manifest.json" if _is_name(run_id) else None
    if manifest is None or not manifest.is_file() or Manifest.read(manifest).earning_month != month:
        raise Refused(
            f"--run {run_id}: not a run of {month} in {folder.root}; the published run of "
            f"{month} is {published} (coop-payouts history --month {month})"
        )
    raise Refused(
        f"--run {run_id}: {month} was republished by run {published} since; nothing was "
        f"released: review run {published}'s batch and release it with --run {published}"
    )


def _is_name(run_id: str) -> bool:
    """A run id that names a folder inside runs/ (no separator, no parent)."""
    return bool(run_id) and run_id not in (".", "..") and Path(run_id).name == run_id


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
            f"{release.approved_by} at {release.released_at} (run "
            f"{release.run_id}); run {state.run_id}, which published {month} since, "
            "proposes no batch: its difference goes to the next batch; nothing changed",
            release,
        )
    released = batches.releases(folder)
    behind = min((date for date in released if date >= state.payment_date), default=None)
    by = f", released by {released[behind].approved_by}" if behind else ""
    raise Refused(
        f"--month {month}: {month} was published behind the batch of {behind or 'a later month'}"
        f"{by}, so it proposes no batch; its difference goes to the next batch"
    )


def _run_file(run_dir: Path, manifest: Manifest, name: str) -> bytes:
    """A file of the run folder, as the run's manifest recorded it (sha256), or exit 1."""
    path = run_dir / name
    recorded = manifest.outputs.get(name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ChainBroken(
            f"{path} is missing, though run {manifest.run_id} wrote it; nothing was released"
        ) from None
    if recorded is None or hashlib.sha256(data).hexdigest() != recorded.sha256:
        raise ChainBroken(
            f"{path} was changed after run {manifest.run_id} wrote it (its sha256 is not the "
            "manifest's); nothing was released: rerun the month to get a batch to review"
        )
    return data


def _release(
    folder: OutputFolder, month: str, state: batches.BatchState, name: str, note: str = ""
) -> ReleaseRecord:
    run_dir = folder.run_dir(state.run_id)
    manifest = Manifest.read(run_dir / "manifest.json")
    bank_file = _run_file(run_dir, manifest, "payments.csv")
    statements = pl.read_parquet(BytesIO(_run_file(run_dir, manifest, "statements.parquet")))
    released_at = datetime.now(UTC).replace(microsecond=0)
    ledger = ledger_rows(statements, name, released_at)
    Ledger.validate(ledger)
    targets = _destinations(folder, state.payment_date)
    folder.staging.mkdir(parents=True, exist_ok=True)
    staged_dir = folder.staging / f"release-{state.payment_date}"
    staged_ledger = folder.staging / f"release-{state.payment_date}-ledger.parquet"
    staged_head = folder.staging / f"release-{state.payment_date}-chain.json"
    shutil.rmtree(staged_dir, ignore_errors=True)
    staged_dir.mkdir()
    previous_release, previous_sha256 = chain.previous_link(folder)
    release = ReleaseRecord(
        run_id=state.run_id,
        earning_month=month,
        payment_date=state.payment_date,
        approved_by=name,
        note=note,
        released_at=released_at.isoformat(),
        totals=_totals(ledger),
        bank_file_sha256=hashlib.sha256(bank_file).hexdigest(),
        ledger_sha256=files.write_parquet_atomic(ledger.drop("payment_date"), staged_ledger),
        previous_release=previous_release,
        previous_release_sha256=previous_sha256,
    )
    record = record_bytes(release)
    files.write_bytes_atomic(bank_file, staged_dir / "payments.csv")
    files.write_bytes_atomic(record, staged_dir / "release.json")
    head = chain.head_record(state.payment_date, record, chain.chain_length(folder) + 1)
    files.write_bytes_atomic(record_bytes(head), staged_head)
    moves = list(zip((staged_ledger, staged_dir, staged_head), targets, strict=True))
    journal = ReleaseJournal(
        [(str(a.relative_to(folder.root)), str(b.relative_to(folder.root))) for a, b in moves]
    )
    # The journal's write decides the release (the next command completes it): an interrupt
    # waits for it, then says it was released (docs/operations.md, "Stopping a command").
    commit = interrupts.Commit("released", month, state.run_id, folder.root)
    with interrupts.held(), interrupts.commit_point(commit):
        files.write_bytes_atomic(record_bytes(journal, indent=None), folder.release_journal)
    _place(folder, month, moves)
    return release


def _destinations(folder: OutputFolder, pay_date: str) -> tuple[Path, Path, Path]:
    """Where a release puts its ledger file, its folder and the chain's new head, once each
    is known to be free and on the output folder's filesystem (so a rename places it whole);
    a usage error (exit 2) otherwise, before anything is written."""
    paths = chain.ChainPaths(folder.root)
    for top in (paths.ledger, paths.releases):
        if top.is_symlink() or (top.exists() and not top.is_dir()):
            raise OutputUnusable(
                f"{top}: not a folder; a release puts its files there, so nothing was released"
            )
        existing = top if top.exists() else top.parent
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputUnusable(f"{existing}: read-only; nothing was released")
        if existing.stat().st_dev != folder.root.stat().st_dev:
            raise OutputUnusable(
                f"{top}: on another filesystem than {folder.root}, so a release cannot be placed "
                "there whole; nothing was released"
            )
    for taken in (paths.ledger_partition(pay_date), paths.release_dir(pay_date)):
        if taken.exists() or taken.is_symlink():
            raise ChainBroken(f"{taken} already exists: {chain.STOPPED}")
    return paths.ledger_file(pay_date), paths.release_dir(pay_date), paths.head


def _place(folder: OutputFolder, month: str, moves: list[tuple[Path, Path]]) -> None:
    """Rename each staged file into place. A rename that fails puts back the ones done before
    it, so a release is placed whole or not at all; if even that fails, the journal stays and
    the next command completes the release (`flows.folder.complete_release`)."""
    done: list[tuple[Path, Path]] = []
    try:
        for staged, target in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
            done.append((staged, target))
    except OSError as error:
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        try:
            for staged, target in reversed(done):
                os.replace(target, staged)
            for _, target in moves:
                if target.parent.name.startswith("payment_date=") and target.parent.exists():
                    with suppress(OSError):
                        target.parent.rmdir()
            folder.release_journal.unlink()
        except OSError:
            raise ReleaseNotPlaced(
                f"the release of {month} was placed only in part ({reason}); the next command "
                "of coop-payouts completes it"
            ) from error
        raise ReleaseNotPlaced(
            f"the release of {month} could not be placed ({reason}); nothing was released: "
            "neither the ledger file nor the bank file is in place"
        ) from error
    folder.release_journal.unlink()


def _totals(ledger: pl.DataFrame) -> list[ReleaseTotal]:
    """Per currency and kind: rows and amount, as text."""
    totals = (
        ledger.group_by("currency", "kind")
        .agg(pl.len().alias("rows"), to_money(pl.col("amount").sum()).alias("amount"))
        .sort("currency", "kind")
    )
    return [
        ReleaseTotal(
            currency=r["currency"], kind=r["kind"], rows=r["rows"], amount=str(r["amount"])
        )
        for r in totals.iter_rows(named=True)
    ]


def _describe(release: ReleaseRecord, digits: dict[str, int]) -> str:
    """The release's totals in a sentence, amounts with their currency's minor digits."""
    parts = [
        f"{t.kind.lower()} {t.currency} {shown_amount(t.amount, t.currency, digits)} ({t.rows})"
        for t in release.totals
    ]
    return ", ".join(parts) or "no payment (a header-only bank file)"
