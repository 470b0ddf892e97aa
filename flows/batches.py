"""Payment batches in the output folder (docs/payments.md): the published statements, the
ledger of what was released or forfeited, the releases, and which batch is proposed, stale or
released.

    statements/payment_date=D/part-0.parquet   the published batch statement of payment date D
    ledger/payment_date=D/part-0.parquet       the ledger rows of D's release (append-only)
    releases/D/payments.csv, release.json      the released bank file and who released it
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from coop_rules import payments
from flows.chain import ChainPaths, verified_releases
from flows.folder import PART, OutputFolder, read_registry
from flows.records import Manifest, NoBatch, RegistryEntry, ReleaseRecord


def statement_file(folder: OutputFolder, pay_date: str) -> Path:
    return folder.root / "statements" / f"payment_date={pay_date}" / PART


def ledger_file(folder: OutputFolder, pay_date: str) -> Path:
    return ChainPaths(folder.root).ledger_file(pay_date)


def release_dir(folder: OutputFolder, pay_date: str) -> Path:
    return ChainPaths(folder.root).release_dir(pay_date)


def releases(folder: OutputFolder) -> dict[str, ReleaseRecord]:
    """payment date -> its release.json, of every released batch, once the release chain has
    checked every file under ledger/ and releases/ (docs/payments.md, "The release chain")."""
    return verified_releases(folder)


def ledger(folder: OutputFolder) -> pl.DataFrame:
    """Every ledger row (RELEASED_SCHEMA columns: mpn_id, currency, amount), read only from
    the files the release chain names, once it has checked them."""
    files = [ledger_file(folder, pay_date) for pay_date in verified_releases(folder)]
    if not files:
        return pl.DataFrame(schema=payments.RELEASED_SCHEMA)
    return pl.read_parquet(files, columns=list(payments.RELEASED_SCHEMA))


def published_payable(folder: OutputFolder, before: str) -> pl.DataFrame:
    """Payable amounts per plan of every published month before `before` (PAYABLE_SCHEMA)."""
    registry = read_registry(folder)
    parts = [
        (month, folder.published_file("payouts", month))
        for month in sorted(registry)
        if month < before
    ]
    frames = [
        pl.read_parquet(path, columns=["mpn_id", "currency", "payable_amount"]).with_columns(
            pl.lit(month).alias("earning_month")
        )
        for month, path in parts
        if path.exists()
    ]
    if not frames:
        return pl.DataFrame(schema=payments.PAYABLE_SCHEMA)
    return pl.concat(frames).select(list(payments.PAYABLE_SCHEMA))


@dataclass(frozen=True)
class BatchState:
    """The batch of a published month: proposed, stale, released or none (a correction
    published behind a released batch proposes none).

    `released` is the release of the month's payment date, even when the month was rerun since
    (state "none"): what was paid stays visible (docs/payments.md, "Approval in Prefect, and
    history"). `behind` is the released batch a month of state "none" was published behind."""

    month: str
    run_id: str
    payment_date: str
    state: str  # "proposed" | "stale" | "released" | "none"
    released: ReleaseRecord | None
    stale_because: str | None
    behind: str | None = None

    @property
    def released_by(self) -> str | None:
        return self.released.approved_by if self.released else None

    @property
    def released_at(self) -> str | None:
        return self.released.released_at if self.released else None

    @property
    def released_run(self) -> str | None:
        """The run whose batch was released (an earlier run of the month, if rerun since)."""
        return self.released.run_id if self.released else None

    @property
    def difference_to_next_batch(self) -> bool:
        """The published run proposes no batch: its difference goes to the next batch."""
        return self.state == "none"


def batch_states(folder: OutputFolder) -> dict[str, BatchState]:
    """The batch of every published month, by month."""
    registry = read_registry(folder)
    released = releases(folder)
    states = {}
    for month in sorted(registry):
        run_id = registry[month].run_id
        manifest = Manifest.read(folder.run_dir(run_id) / "manifest.json")
        pay_date = manifest.payment_date
        batch = manifest.payments
        release = released.get(pay_date)
        behind = None
        if release and release.run_id == run_id:
            state, because = "released", None
        elif batch is None or isinstance(batch, NoBatch):
            state, because = "none", None
            behind = batch.released_batch if batch else None
        else:
            because = stale_because(registry, month, batch.basis)
            state = "stale" if because else "proposed"
        states[month] = BatchState(month, run_id, pay_date, state, release, because, behind)
    return states


def stale_because(
    registry: dict[str, RegistryEntry], month: str, basis: dict[str, str]
) -> str | None:
    """Why a batch computed on `basis` (month -> run of the published months before it) no
    longer holds, or None."""
    now = {m: entry.run_id for m, entry in registry.items() if m < month}
    changed = sorted(m for m in set(now) | set(basis) if now.get(m) != basis.get(m))
    if not changed:
        return None
    return f"{', '.join(changed)} republished after this batch was computed"
