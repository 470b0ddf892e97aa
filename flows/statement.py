"""One partner's statement (docs/operations.md, "A partner's question"): for each payment date,
the batch that holds the partner's accounts, what they were owed and why, what was paid or
forfeited, and who released it.

The rows come from each published month's batch: for a released payment date the run whose
batch was released (even when the month was rerun since: what was paid stays what it was),
otherwise the published run's proposed batch. Paid and forfeited amounts come from the ledger,
read through the release chain (`flows.batches`), never from files as found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from coop_rules.forms import CURRENCY_FORM, MPN_ID_FORM
from coop_rules.payments import STATEMENT_SCHEMA
from flows import batches
from flows.errors import UsageError
from flows.folder import OutputFolder
from flows.manifest import currency_digits, shown_amount
from flows.records import Manifest

COLUMNS = (
    "payment_date",
    "currency",
    "earning_month",
    "batch",
    "status",
    "payable_this_month",
    "brought_forward",
    "owed",
    "paid",
    "forfeited",
    "carried",
    "released_by",
    "released_at",
    "run_id",
)
# The columns a line takes from its batch's state rather than from the statement row.
FROM_BATCH = ("batch", "released_by", "released_at")
AMOUNTS = ("payable_this_month", "brought_forward", "owed", "paid", "forfeited", "carried")
PLAN_COLUMNS = (
    "plan_id",
    "program",
    "fund",
    "period",
    "earned_amount",
    "payable_amount",
    "unpaid_amount",
    "outcome",
    "reason",
)


def check_partner(mpn_id: str, currency: str | None) -> None:
    """--mpn-id is 6-10 ASCII digits and --currency three capital letters (exit 2 otherwise)."""
    if not re.fullmatch(MPN_ID_FORM, mpn_id):
        raise UsageError(f"--mpn-id {mpn_id!r}: an MPN ID is 6 to 10 digits (4412907)")
    if currency is not None and not re.fullmatch(CURRENCY_FORM, currency):
        raise UsageError(f"--currency {currency!r}: a currency is three capital letters (USD)")


@dataclass(frozen=True)
class StatementLine:
    """One payment date of one account: the figures, exact, and the plans behind the payable."""

    row: dict[str, object]
    digits: dict[str, int]
    plans: pl.DataFrame

    def shown(self, column: str) -> str:
        """A value as text, amounts with the currency's minor digits."""
        value = self.row[column]
        if value is None:
            return ""
        if column in AMOUNTS:
            return shown_amount(f"{value:.2f}", str(self.row["currency"]), self.digits)
        return str(value)


def partner_statement(
    folder: OutputFolder, mpn_id: str, currency: str | None = None
) -> list[StatementLine]:
    """The statement lines of `mpn_id` (one currency, or all), by payment date and currency."""
    states = batches.batch_states(folder)
    ledger = ledger_of(folder, mpn_id)
    lines = []
    for state in states.values():
        run_id = state.released_run or (state.run_id if state.state != "none" else None)
        if run_id is None:
            continue  # published behind a released batch: in no batch of its own
        run_dir = folder.run_dir(run_id)
        rows = account_rows(pl.read_parquet(run_dir / "statements.parquet"), mpn_id, currency)
        if rows.is_empty():
            continue
        digits = currency_digits(Manifest.read(run_dir / "manifest.json"))
        payouts = pl.read_parquet(run_dir / "payouts.parquet")
        figures = with_ledger(rows, ledger)
        if state.released_run:  # released: what the ledger does not hold was not paid
            figures = figures.with_columns(pl.col("paid", "forfeited").fill_null(0))
        for row in figures.iter_rows(named=True):
            row.update(
                batch="released" if state.released_run else state.state,
                released_by=state.released_by,
                released_at=state.released_at,
            )
            lines.append(StatementLine(row, digits, plans_of(payouts, mpn_id, row["currency"])))
    return sorted(lines, key=lambda line: (str(line.row["payment_date"]), line.row["currency"]))


def account_rows(statements: pl.DataFrame, mpn_id: str, currency: str | None) -> pl.DataFrame:
    """A batch's statement rows of one partner (and currency)."""
    mine = statements.filter(pl.col("mpn_id") == mpn_id)
    if currency is not None:
        mine = mine.filter(pl.col("currency") == currency)
    return mine.select(list(STATEMENT_SCHEMA))


def with_ledger(rows: pl.DataFrame, ledger: pl.DataFrame) -> pl.DataFrame:
    """Statement rows with what the ledger paid and forfeited on their payment date."""
    paid = ledger.group_by("payment_date", "currency").agg(
        pl.col("amount").filter(pl.col("kind") == "PAYMENT").sum().alias("paid"),
        pl.col("amount").filter(pl.col("kind") == "FORFEIT").sum().alias("forfeited"),
    )
    return (
        rows.join(paid, on=["payment_date", "currency"], how="left")
        .rename({"carried_amount": "carried"})
        .with_columns(pl.col("payment_date").cast(pl.String))
        .select(column for column in COLUMNS if column not in FROM_BATCH)
    )


def ledger_of(folder: OutputFolder, mpn_id: str) -> pl.DataFrame:
    """The partner's ledger rows with their payment date, from the files the chain names."""
    frames = [
        pl.read_parquet(batches.ledger_file(folder, pay_date))
        .filter(pl.col("mpn_id") == mpn_id)
        .select("kind", "currency", "amount")
        .with_columns(pl.lit(pay_date).str.to_date().alias("payment_date"))
        for pay_date in batches.releases(folder)
    ]
    schema: dict[str, Any] = {
        "kind": pl.String,
        "currency": pl.String,
        "amount": STATEMENT_SCHEMA["owed"],
    }
    empty = pl.DataFrame(schema={**schema, "payment_date": pl.Date})
    return pl.concat(frames) if frames else empty


def plans_of(payouts: pl.DataFrame, mpn_id: str, currency: object) -> pl.DataFrame:
    """The partner's payout rows of the batch's month in one currency: the plans behind it."""
    return (
        payouts.filter((pl.col("mpn_id") == mpn_id) & (pl.col("currency") == currency))
        .select(PLAN_COLUMNS)
        .sort("plan_id")
    )


def as_json(lines: list[StatementLine], plans: bool) -> list[dict[str, object]]:
    """The lines as JSON-able rows: amounts as exact text with their currency's minor digits, as
    the bank file writes them (JPY `40000`, USD `300.00`), never floats."""
    rows = []
    for line in lines:
        row: dict[str, object] = {
            column: (line.shown(column) or None) if column in AMOUNTS else line.row[column]
            for column in COLUMNS
        }
        if plans:
            currency = str(line.row["currency"])
            row["plans"] = [
                {
                    key: None
                    if value is None
                    else shown_amount(str(value), currency, line.digits)
                    if key.endswith("_amount")
                    else str(value)
                    for key, value in plan.items()
                }
                for plan in line.plans.iter_rows(named=True)
            ]
        rows.append(row)
    return rows
