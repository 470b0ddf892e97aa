"""Stage "propose payments": the batch for the payment date from each account's balance
(docs/payments.md), written into the staged run; or, for a month published behind a released
batch, no batch and the difference it makes to the next one. A rerun, and a run that proposes
no batch, also names each account whose owed it changes.

The stage gathers what the balance rests on (the payable amounts of the published months, the
ledger, the earlier batches still proposed) and `propose` turns it into statement rows, payment
orders and the payments reconciliation, with the rules of `coop_rules/payments.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from coop_rules import payments
from coop_rules.calendar import payment_date
from coop_rules.integrity import OK
from coop_rules.money import LARGEST, MONEY, to_wide
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import Dataset
from flows import batches, catalog, files
from flows.catalog import RunFile
from flows.errors import ReconciliationFailed, RunError
from flows.folder import read_registry
from flows.month import MonthRun, progress
from flows.records import (
    BatchTotal,
    CurrencyDifference,
    NoBatch,
    OutputRecord,
    OwedChangeRecord,
    ProposedBatch,
    RegistryEntry,
    ReleaseRecord,
    records_of,
)
from flows.stages import Stage
from flows.stages.summaries import Proposed, money_text
from schemas.outputs import OwedChanges, PaymentOrders, Statements


@dataclass(frozen=True)
class Batch:
    """A proposed batch: its statement rows, its payment orders, and its reconciliation."""

    statements: pl.DataFrame
    orders: pl.DataFrame
    reconciliation: payments.PaymentsReconciliation


def valid_profiles(profiles: pl.DataFrame) -> pl.DataFrame:
    """The profile rows without exceptions."""
    return profiles.filter(pl.col(OK)).select(list(payments.PROFILE_SCHEMA))


def propose(
    *,
    payouts: pl.DataFrame,
    payable: pl.DataFrame,
    released: pl.DataFrame,
    proposed: pl.DataFrame,
    profiles: pl.DataFrame,
    month: str,
    payment_date: date,
    run_id: str,
    settings: RuleSettings,
) -> Batch:
    """The batch of `month`: `payouts` are this run's payout rows; `payable` the payable
    amounts of every published month <= M with this run's M in place of the published one."""
    statements = payments.statement_rows(
        payable=payable,
        released=released,
        proposed=proposed,
        profiles=valid_profiles(profiles),
        month=month,
        payment_date=payment_date,
        run_id=run_id,
        settings=settings,
    )
    reconciliation = payments.reconcile_payments(
        statements, payable=payable, released=released, proposed=proposed, month=month
    )
    return Batch(statements, payments.payment_orders(statements, payouts), reconciliation)


def difference_to_next_batch(now: pl.DataFrame, before: pl.DataFrame) -> pl.DataFrame:
    """Per currency, what a month published behind a released batch adds to (or takes from)
    the next batch: its payable amounts now less those published before."""

    def per_currency(frame: pl.DataFrame, name: str) -> pl.DataFrame:
        return frame.group_by("currency").agg(to_wide(pl.col("payable_amount").sum()).alias(name))

    return (
        per_currency(now, "now")
        .join(per_currency(before, "before"), on="currency", how="full", coalesce=True)
        .with_columns(pl.col("now", "before").fill_null(0))
        .select("currency", to_wide(pl.col("now") - pl.col("before")).alias("difference"))
        .sort("currency")
    )


# The summary shows the largest SHOWN_ACCOUNTS accounts whose owed a rerun changes, so a
# large correction stays readable on a screen (the run folder's file holds every one).
SHOWN_ACCOUNTS = 20


def propose_payments(run: MonthRun) -> Proposed:
    """Propose the batch of the run's payment date, or none behind a released batch."""
    progress.info("proposing payments")
    pay_date = payment_date(run.month, run.rules.settings.payment_day)
    payouts = catalog.load_file(run, RunFile.PAYOUTS)
    registry = read_registry(run.folder)
    released = batches.releases(run.folder)
    made_stale = stale_batches(run, registry)
    notes = []
    if made_stale:
        notes.append(
            f"the proposed batches of {', '.join(made_stale)} were computed before this run of "
            f"{run.month}: rerun those months before releasing them"
        )
    replaced = registry[run.month].run_id if run.month in registry else None
    if released and max(released) >= pay_date.isoformat():
        return _behind_release(run, payouts, max(released), notes, replaced)
    batch = propose_batch(run, payouts, released, pay_date)
    outputs = _write_batch(run, batch)
    figures = ProposedBatch(
        payment_date=pay_date.isoformat(),
        basis={m: registry[m].run_id for m in sorted(registry) if m < run.month},
        totals=records_of(BatchTotal, money_text(_totals(batch.statements))),
        reconciliation=batch.reconciliation,
        stale_batches=made_stale,
        notes=notes,
    )
    if replaced:
        # A rerun names every account whose owed moves, not only totals (docs/payments.md).
        changed = _owed_changes_since(run, replaced, batch.statements)
        outputs[RunFile.OWED_CHANGES.value] = _write_owed_changes(run, changed)
        figures.owed_changes = owed_change_record(
            changed, basis="statement", compared_with=replaced
        )
    return Proposed(outputs, figures)


def stale_batches(run: MonthRun, registry: dict[str, RegistryEntry]) -> list[str]:
    """The published months after M whose batch, proposed and not released, rested on the M
    this run replaces."""
    later = [m for m in sorted(registry) if m > run.month]
    states = batches.batch_states(run.folder) if later else {}
    return [m for m in later if states[m].state in ("proposed", "stale")]


def propose_batch(
    run: MonthRun, payouts: pl.DataFrame, released: dict[str, ReleaseRecord], pay_date: date
) -> Batch:
    """The batch of `pay_date` from the balances of every account; a balance a statement row
    cannot hold, or a payments reconciliation that does not hold, stops the run."""
    payable = pl.concat(
        [
            batches.published_payable(run.folder, before=run.month),
            payouts.select(list(payments.PAYABLE_SCHEMA)),
        ]
    )
    ledger = batches.ledger(run.folder)
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
        profiles=catalog.load(run, Dataset.PAYMENT_PROFILES),
        month=run.month,
        payment_date=pay_date,
        run_id=run.run_id,
        settings=run.rules.settings,
    )
    if not batch.reconciliation.holds:
        raise ReconciliationFailed(
            f"the payments reconciliation of {run.month} does not hold "
            f"({batch.reconciliation.model_dump(mode='json')}); nothing was published"
        )
    return batch


def _owed_changes_since(run: MonthRun, replaced: str, statements: pl.DataFrame) -> pl.DataFrame:
    """Every account whose owed differs from the statement of the `replaced` run."""
    before = run.folder.run_dir(replaced) / RunFile.STATEMENTS
    return payments.owed_changes(
        pl.read_parquet(before, columns=["mpn_id", "currency", "owed"])
        if before.exists()
        else pl.DataFrame(schema={"mpn_id": pl.String, "currency": pl.String, "owed": MONEY}),
        statements,
        "owed",
    )


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
            "file": RunFile.OWED_CHANGES.value,
        }
    )


def _write_owed_changes(run: MonthRun, changes: pl.DataFrame) -> OutputRecord:
    OwedChanges.validate(changes)
    return catalog.save_file(run, RunFile.OWED_CHANGES, changes)


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
    catalog.save_part(run, "statements", batch.statements.drop("payment_date"))
    return {
        RunFile.STATEMENTS.value: catalog.save_file(run, RunFile.STATEMENTS, batch.statements),
        RunFile.PAYMENTS.value: catalog.save_bytes(
            run, RunFile.PAYMENTS, files.payments_csv(orders_text), batch.orders.height
        ),
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
        RunFile.STATEMENTS.value: catalog.save_file(run, RunFile.STATEMENTS, statements),
        RunFile.PAYMENTS.value: catalog.save_bytes(
            run, RunFile.PAYMENTS, files.payments_csv(orders), 0
        ),
        RunFile.OWED_CHANGES.value: _write_owed_changes(run, changed),
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


STAGE = Stage(
    "propose-payments",
    propose_payments,
    reads=(RunFile.PAYOUTS, Dataset.PAYMENT_PROFILES),
    writes=(RunFile.STATEMENTS, RunFile.PAYMENTS),
)
