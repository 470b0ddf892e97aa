"""The one rendering of a run's manifest (`runs/<run_id>/manifest.json`, docs/reruns.md) that
both the CLI summary and the Prefect artifact show: its tables and its reconciliation lines. The
manifest itself is a typed record of `flows/records.py` (docs/records.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flows.records import (
    BatchTotal,
    Manifest,
    OutcomeTotal,
    OwedChange,
    OwedChangeRecord,
    ProposedBatch,
)


@dataclass(frozen=True)
class Table:
    """A table to show: a title, column names, rows of text; right-aligned numeric columns."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    numeric: tuple[str, ...] = ()
    # The columns that head each record when the table is shown one record per line; by
    # default its leading text columns (flows/display.py).
    heading: tuple[str, ...] = ()


def shown_amount(text: str, currency: str, digits: dict[str, int]) -> str:
    """An amount's text (always two decimals in the manifest) with its currency's minor digits:
    JPY `1590000`, USD `10000.00`. Only zeros are dropped, so nothing is rounded."""
    places = digits.get(currency, 2)
    if places < 2 and "." in text:
        whole, fraction = text.split(".")
        if not fraction[places:].strip("0"):
            return whole + ("." + fraction[:places] if places else "")
    return text


def currency_digits(manifest: Manifest) -> dict[str, int]:
    """The minor digits of each currency, from the rules the run used."""
    return dict(manifest.rules.settings.currencies)


def summary_tables(manifest: Manifest) -> list[Table]:
    """The tables of a run's summary: totals per currency and outcome, exceptions by code."""
    digits = currency_digits(manifest)

    def money(row: OutcomeTotal | BatchTotal, amount: str) -> str:
        return shown_amount(amount, row.currency, digits)

    totals = Table(
        f"{manifest.earning_month} paid on {manifest.payment_date}",
        ("currency", "outcome", "plans", "earned", "payable", "unpaid"),
        [
            (
                row.currency,
                row.outcome,
                str(row.plans),
                money(row, row.earned_amount),
                money(row, row.payable_amount),
                money(row, row.unpaid_amount),
            )
            for row in manifest.totals
        ],
        numeric=("plans", "earned", "payable", "unpaid"),
    )
    exceptions = Table(
        "exceptions by code",
        ("source", "code", "rows"),
        [(row.source, row.code, str(row.rows)) for row in manifest.exceptions_by_code],
        numeric=("rows",),
    )
    tables = [totals, exceptions]
    batch = batch_totals(manifest)
    if batch:
        tables.append(
            Table(
                f"payment batch of {manifest.payment_date}",
                ("currency", "status", "accounts", "owed", "order", "forfeit", "carried"),
                [
                    (
                        row.currency,
                        row.status,
                        str(row.accounts),
                        money(row, row.owed),
                        money(row, row.order_amount),
                        money(row, row.forfeit_amount),
                        money(row, row.carried_amount),
                    )
                    for row in batch
                ],
                numeric=("accounts", "owed", "order", "forfeit", "carried"),
            )
        )
    changed = owed_changes(manifest)
    if changed is not None and changed.largest:
        tables.append(_owed_changes(manifest, changed, digits))
    return tables


def batch_totals(manifest: Manifest) -> list[BatchTotal]:
    """The batch per currency and status; none when the run proposes no batch."""
    return manifest.payments.totals if isinstance(manifest.payments, ProposedBatch) else []


def owed_changes(manifest: Manifest) -> OwedChangeRecord | None:
    """The accounts whose owed the run changes, if it compared with anything."""
    return manifest.payments.owed_changes if manifest.payments else None


def _owed_changes(manifest: Manifest, changed: OwedChangeRecord, digits: dict[str, int]) -> Table:
    """The accounts whose owed the run changes, largest difference first (docs/payments.md,
    "Accounts whose owed changes")."""
    shown = len(changed.largest)
    count = f"{shown} of {changed.accounts}" if changed.accounts > shown else str(shown)
    if changed.basis == "next batch":
        title = (
            f"accounts whose owed changes in the next batch ({count}): their payable of "
            f"{manifest.earning_month} before and after this run"
        )
    else:
        title = (
            f"accounts whose owed changes ({count}): the statement of run "
            f"{changed.compared_with} before, this run's after"
        )

    def money(row: OwedChange, amount: str) -> str:
        return shown_amount(amount, row.currency, digits)

    return Table(
        title,
        ("account", "currency", "before", "after", "difference"),
        [
            (
                row.mpn_id,
                row.currency,
                money(row, row.before),
                money(row, row.after),
                _signed(money(row, row.difference)),
            )
            for row in changed.largest
        ],
        numeric=("before", "after", "difference"),
    )


def _signed(text: str) -> str:
    return text if text.startswith("-") else f"+{text}"


def summary_sentences(manifest: Manifest) -> list[str]:
    """The lines under the tables: the reconciliation of the month and of its batch."""
    rec = manifest.reconciliation
    lines = [
        f"earnings rows in scope {rec.in_scope_rows}: routed {rec.routed_rows}, "
        f"with exceptions {rec.exception_rows}; exceptions in all files "
        f"{manifest.exception_count}; reconciliation {'holds' if rec.holds else 'FAILS'}"
    ]
    payments = manifest.payments
    if isinstance(payments, ProposedBatch):
        holds = payments.reconciliation.holds
        lines.append(f"payments reconciliation {'holds' if holds else 'FAILS'}")
    if manifest.supersedes:
        lines.append(f"replaces run {manifest.supersedes}; reason: {manifest.reason}")
    changed = owed_changes(manifest)
    if changed is not None and changed.largest:
        if changed.basis == "next batch":
            lines.append(
                "the next batch takes each account's difference through its owed: a rise is "
                "paid with it, a fall is recovered from it"
            )
        more = changed.accounts - len(changed.largest)
        if more:
            lines.append(
                f"{more} more account(s) whose owed changes are not shown: the run folder's "
                f"{changed.file} lists all {changed.accounts}"
            )
    return lines


def markdown(table: Table) -> list[str]:
    """A table as Markdown lines."""
    align = " | ".join("---:" if c in table.numeric else "---" for c in table.columns)
    lines = [f"## {table.title}", "", f"| {' | '.join(table.columns)} |", f"| {align} |"]
    lines += [f"| {' | '.join(_cell(v) for v in row)} |" for row in table.rows]
    return lines


# Characters that mean something inside a Markdown line; escaped, each shows as itself.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~!#])")


def plain_markdown(text: str) -> str:
    """Text from inputs, options or a person, shown as plain text in one Markdown line: no
    emphasis, links, HTML or table breaks, and control characters (terminal escapes) as
    visible `\\xNN`."""
    escaped = _MARKDOWN.sub(r"\\\1", text)
    return "".join(
        c if c.isprintable() else " " if c in "\n\r\t" else f"\\x{ord(c):02x}" for c in escaped
    )


def _cell(text: str) -> str:
    """Text from inputs shown as plain text in a Markdown cell."""
    return plain_markdown(text)
