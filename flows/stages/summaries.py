"""What each stage tells the stages after it: small summaries, never frames (frames go through
`flows/catalog.py`). A stage imports these, never another stage."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TypeGuard

import polars as pl

from coop_rules.reconciliation import Reconciliation
from coop_rules.vocabulary import Dataset
from flows import reading
from flows.records import (
    ChangeSummary,
    ExceptionCount,
    NoBatch,
    OutcomeTotal,
    OutputRecord,
    ProposedBatch,
    RegistryEntry,
)


def money_text(frame: pl.DataFrame) -> list[dict]:
    """Rows of a frame for JSON: decimals and dates as text."""
    return [
        {
            key: value if value is None or isinstance(value, int | str | bool) else str(value)
            for key, value in row.items()
        }
        for row in frame.iter_rows(named=True)
    ]


def input_digest(shas: dict[str, str], rules_sha: str) -> str:
    """One digest of the input files and the rules file."""
    text = json.dumps({"inputs": shas, "rules": rules_sha}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def needs_reason(
    published: RegistryEntry | None, digest: str, reason: str | None
) -> TypeGuard[RegistryEntry]:
    """Whether replacing the published month by inputs and rules of `digest` needs --reason."""
    return published is not None and published.input_digest != digest and not reason


@dataclass(frozen=True)
class ReadInputs:
    """Stage read: the input files of a run, their sha256 and extra columns, and the published
    run of the month (if any) with whether the inputs or rules changed since it."""

    files: dict[Dataset, reading.InputFile]
    sha256: dict[str, str]
    extra_columns: dict[str, list[str]]
    input_digest: str
    published: RegistryEntry | None
    reason: str | None

    @property
    def reason_needed(self) -> bool:
        """Whether these inputs replace a published month from other inputs without --reason."""
        return needs_reason(self.published, self.input_digest, self.reason)


@dataclass(frozen=True)
class Validated:
    """Stage validate: rows and exceptions per reference dataset; the paid-before basis; and,
    when this very month is already published from the same inputs, rules and basis, that
    run's id."""

    rows: dict[str, int]
    exceptions: int
    activity_checked: bool
    period: tuple[str, str] | None
    paid_before_basis: dict[str, str]
    month_digest: str
    unchanged_run_id: str | None


@dataclass(frozen=True)
class Routed:
    """Stage route: counts of the earnings file: every row, the in-scope rows, the rows of M
    itself, the exception rows."""

    rows: int
    in_scope_rows: int
    month_rows: int
    exceptions: int


@dataclass(frozen=True)
class Decided:
    """Stage decide: what the staged run holds so far, as the manifest records it."""

    outputs: dict[str, OutputRecord]
    totals: list[OutcomeTotal]
    exceptions_by_code: list[ExceptionCount]
    reconciliation: Reconciliation
    changes: ChangeSummary | None


@dataclass(frozen=True)
class Proposed:
    """Stage propose: the batch's files and figures, as the manifest records them."""

    outputs: dict[str, OutputRecord]
    payments: ProposedBatch | NoBatch

    @property
    def batch(self) -> bool:
        return isinstance(self.payments, ProposedBatch)


@dataclass(frozen=True)
class Staged:
    """Everything the stages before publish found: what the manifest is built from."""

    inputs: ReadInputs
    validated: Validated
    routed: Routed
    decided: Decided
    proposed: Proposed
