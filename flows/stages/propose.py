"""Stage "propose payments": the batch for the payment date from each account's balance
(`pipeline/propose.py`, docs/payments.md), written into the staged run; or, for a month
published behind a released batch, no batch and the difference it makes to the next one. A
rerun, and a run that proposes no batch, also names each account whose owed it changes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from coop_rules import payments
from coop_rules.calendar import payment_date
from coop_rules.money import LARGEST, MONEY, to_wide
from coop_rules.vocabulary import Dataset
from flows import batches, io
from flows.errors import ReconciliationFailed, RunError
from flows.manifest import OutputRecord
from flows.publish import read_registry
from flows.records import (
    BatchTotal,
    CurrencyDifference,
    NoBatch,
    OwedChangeRecord,
    ProposedBatch,
    ReleaseRecord,
    records_of,
)
from flows.run import MonthRun, progress
from flows.stages import work
from flows.stages.decide import Decided, money_text
from pipeline.propose import Batch, difference_to_next_batch, propose
from schemas.outputs import OwedChanges, PaymentOrders, Statements

# The run folder's file of every account whose owed a rerun changes; the summary shows the
# largest SHOWN_ACCOUNTS of them, so a large correction stays readable on a screen.
OWED_CHANGES_FILE = "owed_changes.parquet"
SHOWN_ACCOUNTS = 20


@dataclass(frozen=True)
class Proposed:
    """The batch's files and figures, as the manifest records them."""

    outputs: dict[str, OutputRecord]
    payments: ProposedBatch | NoBatch

    @property
    def batch(self) -> bool:
        return isinstance(self.payments, ProposedBatch)


def statement_part(run: MonthRun) -> Path:
    """The staged file of the published statement of the payment date."""
    return run.staging / f"{run.run_id}-statements.parquet"


def propose_payments(run: MonthRun, decided: Decided) -> Proposed:
    """Propose the batch of the run's payment date, or none behind a released batch."""
    progress.info("proposing payments")
    settings = run.rules.settings
    pay_date = payment_date(run.month, settings.payment_day)
    folder = run.folder
    payouts = pl.read_parquet(run.staged / "payouts.parquet")
    registry = read_registry(folder)
    released = batches.releases(folder)
    later = [m for m in sorted(registry) if m > run.month]
    states = batches.batch_states(folder) if later else {}
    made_stale = [m for m in later if states[m].state in ("proposed", "stale")]
    notes = []
    if made_stale:
        notes.append(
            f"the proposed batches of {', '.join(made_stale)} were computed before this run of "
            f"{run.month}: rerun those months before releasing them"
        )
    replaced = registry[run.month].run_id if run.month in registry else None
    if released and max(released) >= pay_date.isoformat():
        return _behind_release(run, payouts, max(released), notes, replaced)
    payable = pl.concat(
        [
            batches.published_payable(folder, before=run.month),
            payouts.select(list(payments.PAYABLE_SCHEMA)),
        ]
    )
    ledger = batches.ledger(folder)
    proposed_before = _proposed_before(run, pay_date.isoformat(), released)
    # A balance a statement row cannot hold stops the run by name (docs/payments.md).
    beyond = payments.balances_beyond_money(
        payable=payable, released=ledger, proposed=proposed_before, month=run.month
    )
    if beyond.height:
        raise RunError(_beyond_money(run, pay_date.isoformat(), beyond))
    batch = propose(
        payouts=payouts,
        payable=payable,
        released=ledger,
        proposed=proposed_before,
        profiles=work.get(run, Dataset.PAYMENT_PROFILES.value),
        month=run.month,
        payment_date=pay_date,
        run_id=run.run_id,
        settings=settings,
    )
    if not batch.reconciliation.holds:
        raise ReconciliationFailed(
            f"the payments reconciliation of {run.month} does not hold "
            f"({batch.reconciliation.model_dump(mode='json')}); nothing was published"
        )
    outputs = _write_batch(run, batch)
    basis = {m: registry[m].run_id for m in sorted(registry) if m < run.month}
    figures = ProposedBatch(
        payment_date=pay_date.isoformat(),
        basis=basis,
        totals=records_of(BatchTotal, money_text(_totals(batch.statements))),
        reconciliation=batch.reconciliation,
        stale_batches=made_stale,
        notes=notes,
    )
    if replaced:
        # A rerun names every account whose owed moves, not only totals (docs/payments.md).
        before = folder.run_dir(replaced) / "statements.parquet"
        changed = payments.owed_changes(
            pl.read_parquet(before, columns=["mpn_id", "currency", "owed"])
            if before.exists()
            else pl.DataFrame(schema={"mpn_id": pl.String, "currency": pl.String, "owed": MONEY}),
            batch.statements,
            "owed",
        )
        outputs[OWED_CHANGES_FILE] = _write_owed_changes(run, changed)
        figures.owed_changes = owed_change_record(
            changed, basis="statement", compared_with=replaced
        )
    return Proposed(outputs, figures)


def owed_change_record(
    changes: pl.DataFrame, *, basis: str, compared_with: str | None
) -> OwedChangeRecord:
    """What the manifest keeps of the accounts whose owed changes (docs/payments.md, "Accounts
    whose owed changes"): how many, the SHOWN_ACCOUNTS largest (the summary's table) and the
    run folder's file that holds every one. `basis`: "statement" (against the replaced run's
    statement) or "next batch" (what the month's payouts take to the next batch)."""
    return OwedChangeRecord.model_validate(
        {
            "basis": basis,
            "compared_with": compared_with,
            "accounts": changes.height,
            "largest": money_text(changes.head(SHOWN_ACCOUNTS)),
            "file": OWED_CHANGES_FILE,
        }
    )


def _write_owed_changes(run: MonthRun, changes: pl.DataFrame) -> OutputRecord:
    OwedChanges.validate(changes)
    sha = io.write_parquet_atomic(changes, run.staged / OWED_CHANGES_FILE)
    return OutputRecord(sha, changes.height)


def _beyond_money(run: MonthRun, pay_date: str, beyond: pl.DataFrame) -> str:
    """The sentence for balances a statement row cannot hold (docs/payments.md, "Balances
    beyond Decimal(18, 2)"): the first account, the figure that does not fit, exactly."""
    first = beyond.row(0, named=True)
    figure = next(
        name
        for name in ("owed", "payable_this_month", "brought_forward")
        if abs(first[name]) > LARGEST
    )
    more = beyond.height - 1
    others = f" (and {more} more account(s))" if more else ""
    return (
        f"the balance of account {first['mpn_id']} {first['currency']} in the batch of "
        f"{run.month} (paid {pay_date}) does not fit Decimal(18, 2), 16 digits before the "
        f"point: {figure} {first[figure]}{others}; nothing was published"
    )


def _proposed_before(
    run: MonthRun, pay_date: str, released: dict[str, ReleaseRecord]
) -> pl.DataFrame:
    """Order and forfeit amounts of the published batches before `pay_date` not yet released."""
    states = batches.batch_states(run.folder)
    files = [
        batches.statement_file(run.folder, state.payment_date)
        for state in states.values()
        if state.payment_date < pay_date
        and state.state in ("proposed", "stale")
        and state.payment_date not in released
    ]
    files = [f for f in files if f.exists()]
    if not files:
        return pl.DataFrame(schema=payments.PROPOSED_SCHEMA)
    return pl.read_parquet(files, columns=list(payments.PROPOSED_SCHEMA))


def _write_batch(run: MonthRun, batch: Batch) -> dict[str, OutputRecord]:
    Statements.validate(batch.statements)
    PaymentOrders.validate(batch.orders)
    orders_text = batch.orders.with_columns(
        payments.amount_text(pl.col("amount"), pl.col("currency"), run.rules.settings)
    )
    statements_sha = io.write_parquet_atomic(batch.statements, run.staged / "statements.parquet")
    io.write_parquet_atomic(batch.statements.drop("payment_date"), statement_part(run))
    csv_sha = io.write_bytes_atomic(io.payments_csv(orders_text), run.staged / "payments.csv")
    return {
        "statements.parquet": OutputRecord(statements_sha, batch.statements.height),
        "payments.csv": OutputRecord(csv_sha, batch.orders.height),
    }


def _behind_release(
    run: MonthRun, payouts: pl.DataFrame, latest: str, notes: list[str], replaced: str | None
) -> Proposed:
    """A month whose payment date is not after the latest released batch: no batch; its
    difference goes to the next batch through what each account is owed."""
    published = run.folder.published_file("payouts", run.month)
    before = (
        pl.read_parquet(published, columns=["mpn_id", "currency", "payable_amount"])
        if published.exists()
        else pl.DataFrame(
            schema={"mpn_id": pl.String, "currency": pl.String, "payable_amount": MONEY}
        )
    )
    difference = difference_to_next_batch(payouts, before)
    # Totals per currency can hide money moved between accounts (docs/payments.md).
    changed = payments.owed_changes(before, payouts, "payable_amount")
    statements = pl.DataFrame(schema=payments.STATEMENT_SCHEMA)
    orders = pl.DataFrame(schema=dict.fromkeys(payments.PAYMENT_ORDER_COLUMNS, pl.String))
    outputs = {
        "statements.parquet": OutputRecord(
            io.write_parquet_atomic(statements, run.staged / "statements.parquet"), 0
        ),
        "payments.csv": OutputRecord(
            io.write_bytes_atomic(io.payments_csv(orders), run.staged / "payments.csv"), 0
        ),
        OWED_CHANGES_FILE: _write_owed_changes(run, changed),
    }
    figures = ", ".join(f"{row['currency']} {row['difference']}" for row in money_text(difference))
    accounts = f"; {changed.height} account(s) change" if changed.height else ""
    notes = [
        f"the batch of {latest} is released: this run proposes no batch; its difference "
        f"({figures or 'none'}{accounts}) goes to the next batch through what each account "
        "is owed",
        *notes,
    ]
    return Proposed(
        outputs,
        NoBatch(
            payment_date=payment_date(run.month, run.rules.settings.payment_day).isoformat(),
            released_batch=latest,
            difference_to_next_batch=records_of(CurrencyDifference, money_text(difference)),
            owed_changes=owed_change_record(
                changed,
                basis="next batch",
                compared_with=replaced,
            ),
            notes=notes,
        ),
    )


def _totals(statements: pl.DataFrame) -> pl.DataFrame:
    """Accounts and sums per currency and status, for the summary."""
    return (
        statements.group_by("currency", "status")
        .agg(
            pl.len().cast(pl.Int64).alias("accounts"),
            *(
                to_wide(pl.col(name).sum()).alias(name)
                for name in ("owed", "order_amount", "forfeit_amount", "carried_amount")
            ),
        )
        .sort("currency", "status")
    )
