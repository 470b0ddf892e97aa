"""Stage "propose payments": the batch for the payment date from each account's balance
(`pipeline/propose.py`, docs/payments.md), written into the staged run; or, for a month
published behind a released batch, no batch and the difference it makes to the next one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from coop_rules import payments
from coop_rules.calendar import payment_date
from coop_rules.money import MONEY, to_money
from coop_rules.vocabulary import Dataset
from flows import batches, io
from flows.errors import ReconciliationFailed
from flows.manifest import OutputRecord
from flows.publish import read_registry
from flows.run import MonthRun, progress
from flows.stages import work
from flows.stages.decide import Decided, money_text
from pipeline.propose import Batch, difference_to_next_batch, propose
from schemas.outputs import PaymentOrders, Statements


@dataclass(frozen=True)
class Proposed:
    """The batch's files and figures, as the manifest records them."""

    outputs: dict[str, OutputRecord]
    payments: dict[str, Any] = field(default_factory=dict)

    @property
    def batch(self) -> bool:
        return self.payments.get("batch") == "proposed"


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
    if released and max(released) >= pay_date.isoformat():
        return _behind_release(run, payouts, max(released), notes)
    payable = pl.concat(
        [
            batches.published_payable(folder, before=run.month),
            payouts.select(list(payments.PAYABLE_SCHEMA)),
        ]
    )
    batch = propose(
        payouts=payouts,
        payable=payable,
        released=batches.ledger(folder),
        proposed=_proposed_before(run, pay_date.isoformat(), released),
        profiles=work.get(run, Dataset.PAYMENT_PROFILES.value),
        month=run.month,
        payment_date=pay_date,
        run_id=run.run_id,
        settings=settings,
    )
    if not batch.reconciliation["holds"]:
        raise ReconciliationFailed(
            f"the payments reconciliation of {run.month} does not hold "
            f"({batch.reconciliation}); nothing was published"
        )
    outputs = _write_batch(run, batch)
    basis = {m: registry[m]["run_id"] for m in sorted(registry) if m < run.month}
    return Proposed(
        outputs,
        {
            "batch": "proposed",
            "payment_date": pay_date.isoformat(),
            "basis": basis,
            "totals": money_text(_totals(batch.statements)),
            "reconciliation": batch.reconciliation,
            "stale_batches": made_stale,
            "notes": notes,
        },
    )


def _proposed_before(run: MonthRun, pay_date: str, released: dict[str, dict]) -> pl.DataFrame:
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
    run: MonthRun, payouts: pl.DataFrame, latest: str, notes: list[str]
) -> Proposed:
    """A month whose payment date is not after the latest released batch: no batch; its
    difference goes to the next batch through what each account is owed."""
    published = run.folder.published_file("payouts", run.month)
    before = (
        pl.read_parquet(published, columns=["currency", "payable_amount"])
        if published.exists()
        else pl.DataFrame(schema={"currency": pl.String, "payable_amount": MONEY})
    )
    difference = difference_to_next_batch(payouts, before)
    statements = pl.DataFrame(schema=payments.STATEMENT_SCHEMA)
    orders = pl.DataFrame(schema=dict.fromkeys(payments.PAYMENT_ORDER_COLUMNS, pl.String))
    outputs = {
        "statements.parquet": OutputRecord(
            io.write_parquet_atomic(statements, run.staged / "statements.parquet"), 0
        ),
        "payments.csv": OutputRecord(
            io.write_bytes_atomic(io.payments_csv(orders), run.staged / "payments.csv"), 0
        ),
    }
    figures = ", ".join(f"{row['currency']} {row['difference']}" for row in money_text(difference))
    notes = [
        f"the batch of {latest} is released: this run proposes no batch; its difference "
        f"({figures or 'none'}) goes to the next batch through what each account is owed",
        *notes,
    ]
    return Proposed(
        outputs,
        {
            "batch": "none",
            "payment_date": payment_date(run.month, run.rules.settings.payment_day).isoformat(),
            "released_batch": latest,
            "difference_to_next_batch": money_text(difference),
            "notes": notes,
        },
    )


def _totals(statements: pl.DataFrame) -> pl.DataFrame:
    """Accounts and sums per currency and status, for the summary."""
    return (
        statements.group_by("currency", "status")
        .agg(
            pl.len().cast(pl.Int64).alias("accounts"),
            *(
                to_money(pl.col(name).sum()).alias(name)
                for name in ("owed", "order_amount", "forfeit_amount", "carried_amount")
            ),
        )
        .sort("currency", "status")
    )
