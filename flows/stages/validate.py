"""Stage "validate": the reference datasets checked row by row (docs/inputs.md); then the
published months the month rests on, and whether this exact month is already published
(docs/reruns.md).

Programs, plans, limits, campaigns, activities and payment profiles are read as text and each is
checked against its pandera model (`schemas/inputs.py`), its keys and its references, in
dependency order, and parsed to typed columns. Every row keeps an `OK` flag: false once any
check has failed, so the row takes no further part. The earnings are checked row by row as they
are routed (stage route).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import cast

import polars as pl

from coop_rules import integrity
from coop_rules.calendar import month_text, parse_month
from coop_rules.integrity import OK, PLAN_KEY
from coop_rules.routing import period_of_month
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import ROW_NUMBER, Code, Dataset
from flows import catalog, reading
from flows.catalog import Handover
from flows.folder import read_registry
from flows.month import MonthRun, progress
from flows.stages import Stage
from flows.stages.summaries import ReadInputs, Validated
from schemas.inputs import (
    INPUTS,
    empty_exceptions,
    finish_exceptions,
    parse_text,
    validate_text,
)

Text = dict[Dataset, pl.DataFrame | None]


@dataclass(frozen=True)
class References:
    """The checked datasets other than earnings: typed frames with `OK` per row, and their
    exception rows."""

    frames: dict[Dataset, pl.DataFrame]
    exceptions: pl.DataFrame
    activity_checked: bool


def mark(frame: pl.DataFrame, exceptions: pl.DataFrame) -> pl.DataFrame:
    """Set `OK` to false on the rows named by `exceptions`."""
    bad = exceptions.get_column(ROW_NUMBER).unique()
    return frame.with_columns((pl.col(OK) & ~pl.col(ROW_NUMBER).is_in(bad.implode())).alias(OK))


class _Found:
    """The exception rows found so far, across datasets."""

    def __init__(self) -> None:
        self.rows: list[pl.DataFrame] = []

    def add(self, dataset: Dataset, frame: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
        """Record `found` (rows of `dataset`) and mark them on `frame`."""
        found = finish_exceptions(found, dataset)
        self.rows.append(found)
        return mark(frame, found)

    def frame(self) -> pl.DataFrame:
        return pl.concat([e for e in self.rows if not e.is_empty()] or [empty_exceptions()])


def _empty_text(dataset: Dataset) -> pl.DataFrame:
    return pl.DataFrame(
        schema={**{c: pl.String for c in INPUTS[dataset].columns}, ROW_NUMBER: pl.Int64}
    )


def check_form(
    dataset: Dataset, text: pl.DataFrame, settings: RuleSettings, found: _Found
) -> pl.DataFrame:
    """The schema and unique-key checks of one dataset; returns it typed, with `OK`."""
    spec = INPUTS[dataset]
    frame = text.with_columns(pl.lit(True).alias(OK))
    frame = found.add(dataset, frame, validate_text(text, spec, settings))
    for keys in spec.unique_keys:
        frame = found.add(dataset, frame, integrity.duplicate_keys(text, keys, spec.record_key))
    return parse_text(frame, spec)


def check_programs(text: pl.DataFrame, settings: RuleSettings, found: _Found) -> pl.DataFrame:
    """Programs: form, unique (program, period), and periods that make sense."""
    programs = check_form(Dataset.PROGRAMS, text, settings, found)
    return found.add(Dataset.PROGRAMS, programs, integrity.program_dates(programs))


def check_plans(
    text: pl.DataFrame, programs: pl.DataFrame, settings: RuleSettings, found: _Found
) -> pl.DataFrame:
    """Plans: form, unique plan_id and plan key, a known program period, consistent dates."""
    plans = check_form(Dataset.PLANS, text, settings, found)
    plans = found.add(
        Dataset.PLANS,
        plans,
        integrity.duplicate_keys(plans, PLAN_KEY, "plan_id", Code.DUPLICATE_PLAN),
    )
    plans = found.add(
        Dataset.PLANS,
        plans,
        integrity.unknown_references(plans, programs, ["program", "period"], "plan_id", "programs"),
    )
    return found.add(Dataset.PLANS, plans, integrity.plan_dates(plans, settings))


def check_limits(
    text: pl.DataFrame, plans: pl.DataFrame, settings: RuleSettings, found: _Found
) -> pl.DataFrame:
    """Limits: form, unique (plan_id, effective_month), a valid plan, decimals of its currency."""
    limits = check_form(Dataset.PLAN_LIMITS, text, settings, found)
    limits = found.add(
        Dataset.PLAN_LIMITS,
        limits,
        integrity.unknown_references(limits, plans, ["plan_id"], "plan_id", "plans"),
    )
    # The decimals of a limit are checked against its plan's currency on the text: a cast
    # would have truncated them.
    limit_text = (
        text.lazy()
        .select(ROW_NUMBER, "plan_id", "limit_amount")
        .join(limits.lazy().select(ROW_NUMBER, OK), on=ROW_NUMBER, how="left")
        .collect()
    )
    return found.add(
        Dataset.PLAN_LIMITS, limits, integrity.limit_currency(limit_text, plans, settings)
    )


def check_child(
    dataset: Dataset,
    text: pl.DataFrame | None,
    parent: pl.DataFrame,
    on: list[str],
    parent_name: str,
    settings: RuleSettings,
    found: _Found,
) -> pl.DataFrame:
    """Campaigns or activities: form, unique id, and a valid parent row."""
    frame = check_form(dataset, text if text is not None else _empty_text(dataset), settings, found)
    return found.add(
        dataset,
        frame,
        integrity.unknown_references(frame, parent, on, INPUTS[dataset].record_key, parent_name),
    )


def check_profiles(text: pl.DataFrame, settings: RuleSettings, found: _Found) -> pl.DataFrame:
    """Payment profiles: form, unique mpn_id, a hold date where action is required."""
    profiles = check_form(Dataset.PAYMENT_PROFILES, text, settings, found)
    return found.add(Dataset.PAYMENT_PROFILES, profiles, integrity.profile_dates(profiles))


def check_references(text: Text, settings: RuleSettings) -> References:
    """Validate programs, plans, limits, campaigns, activities and payment profiles, in that
    order."""
    found = _Found()
    programs_text, plans_text, limits_text, profiles_text = (
        text[Dataset.PROGRAMS],
        text[Dataset.PLANS],
        text[Dataset.PLAN_LIMITS],
        text[Dataset.PAYMENT_PROFILES],
    )
    assert programs_text is not None and plans_text is not None and limits_text is not None
    assert profiles_text is not None
    programs = check_programs(programs_text, settings, found)
    plans = check_plans(plans_text, programs, settings, found)
    limits = check_limits(limits_text, plans, settings, found)
    campaigns = check_child(
        Dataset.CAMPAIGNS,
        text.get(Dataset.CAMPAIGNS),
        plans,
        ["plan_id"],
        "plans",
        settings,
        found,
    )
    activities = check_child(
        Dataset.ACTIVITIES,
        text.get(Dataset.ACTIVITIES),
        campaigns,
        ["campaign_id"],
        "campaigns",
        settings,
        found,
    )
    activity_checked = (
        text.get(Dataset.CAMPAIGNS) is not None or text.get(Dataset.ACTIVITIES) is not None
    )
    frames = {
        Dataset.PROGRAMS: programs,
        Dataset.PLANS: plans,
        Dataset.PLAN_LIMITS: limits,
        Dataset.CAMPAIGNS: campaigns,
        Dataset.ACTIVITIES: activities,
        Dataset.PAYMENT_PROFILES: check_profiles(profiles_text, settings, found),
    }
    return References(frames, found.frame(), activity_checked)


REFERENCE_DATASETS = tuple(d for d in Dataset if d != Dataset.EARNINGS)


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
            text[dataset] = reading.read_text(file)[0]
    rows = {dataset.value: frame.height for dataset, frame in text.items() if frame is not None}
    progress.info("checking programs, plans and limits")
    references = check_references(text, run.rules.settings)
    text.clear()
    for checked, frame in references.frames.items():
        catalog.save(run, checked, frame)
    catalog.save(run, Handover.REFERENCE_EXCEPTIONS, references.exceptions)
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
        month_digest=digest,
        unchanged_run_id=unchanged,
    )


STAGE = Stage(
    "validate",
    validate_inputs,
    writes=(*REFERENCE_DATASETS, Handover.REFERENCE_EXCEPTIONS),
)
