"""Stage "validate": read the reference files as text and check them row by row
(`pipeline/validate.py`, docs/inputs.md); then find the published months the month rests on and
whether this exact month is already published (docs/reruns.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import cast

import polars as pl

from coop_rules.calendar import month_text, parse_month
from coop_rules.routing import period_of_month
from coop_rules.vocabulary import Dataset
from flows import io
from flows.publish import read_registry
from flows.run import MonthRun, progress
from flows.stages import work
from flows.stages.read import ReadInputs
from pipeline.decide import CheckedReferences
from pipeline.validate import References, check_references

REFERENCE_DATASETS = tuple(d for d in Dataset if d != Dataset.EARNINGS)


@dataclass(frozen=True)
class Validated:
    """Rows and exceptions per reference dataset; the paid-before basis; and, when this very
    month is already published from the same inputs, rules and basis, that run's id."""

    rows: dict[str, int]
    exceptions: int
    activity_checked: bool
    period: tuple[str, str] | None
    paid_before_basis: dict[str, str]
    digest: str
    unchanged_run_id: str | None


def month_digest(input_digest: str, earlier: dict[str, str]) -> str:
    """One digest of what a month's result depends on: inputs and rules, and the runs that
    published the earlier months (its paid-before amounts and its batch rest on them)."""
    text = json.dumps({"inputs": input_digest, "earlier": earlier}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def month_period(programs: pl.DataFrame, month: str) -> tuple[str, str] | None:
    """First and last month of the valid program periods holding M's first day."""
    periods = period_of_month(programs, parse_month(month))
    if periods.is_empty():
        return None
    return (
        month_text(cast(date, periods.get_column("period_start").min())),
        month_text(cast(date, periods.get_column("period_end").max())),
    )


def validate_inputs(run: MonthRun, inputs: ReadInputs) -> Validated:
    """Check the reference datasets and keep them, typed, for the later stages."""
    text: dict[Dataset, pl.DataFrame | None] = {}
    for dataset in REFERENCE_DATASETS:
        file = inputs.files.get(dataset)
        if file is not None:
            progress.info(f"reading {file.name}")
            text[dataset] = io.read_text(file)[0]
    rows = {dataset.value: frame.height for dataset, frame in text.items() if frame is not None}
    progress.info("checking programs, plans and limits")
    references = check_references(text, run.rules.settings)
    text.clear()
    keep(run, references)
    period = month_period(references.frames[Dataset.PROGRAMS], run.month)
    registry = read_registry(run.folder)
    basis = (
        {m: registry[m].run_id for m in sorted(registry) if period[0] <= m < run.month}
        if period
        else {}
    )
    # The batch rests on every earlier month, whatever its period (docs/payments.md, "Owed").
    earlier = {m: registry[m].run_id for m in sorted(registry) if m < run.month}
    digest = month_digest(inputs.input_digest, earlier)
    published = inputs.published
    unchanged = published.run_id if published and published.month_digest == digest else None
    return Validated(
        rows=rows,
        exceptions=references.exceptions.height,
        activity_checked=references.activity_checked,
        period=period,
        paid_before_basis=basis,
        digest=digest,
        unchanged_run_id=unchanged,
    )


def keep(run: MonthRun, references: References) -> None:
    """The typed reference frames and their exceptions, for stages route and decide."""
    for dataset, frame in references.frames.items():
        work.put(run, dataset.value, frame)
    work.put(run, "reference_exceptions", references.exceptions)


def load(
    run: MonthRun, validated: Validated, columns: Mapping[Dataset, Sequence[str]]
) -> CheckedReferences:
    """The reference frames stage validate kept, as scans of the `columns` of each dataset in
    `columns`, and their exception rows."""
    frames = {
        dataset: work.scan(run, dataset.value, list(names))
        for dataset, names in columns.items()
        if work.has(run, dataset.value)
    }
    return CheckedReferences(
        frames, work.get(run, "reference_exceptions"), validated.activity_checked
    )
