"""Valid input rows as text, with overrides, so that each test case reads as one line.

Rows are dicts of column -> text (None is an empty field), the way `flows.reading.read_text` hands
them over; `text_frame` turns them into a frame of `pl.String` columns plus the 1-based row
number `row_number`. The defaults make one Approved USD plan of the FY26 Azure Co-op period with a
limit of 10000.00 in force since 2025-07, and one 100.00 USD earning in April 2026.
"""

from __future__ import annotations

from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import polars as pl

from coop_rules.money import MONEY
from coop_rules.settings import RuleSettings, parse_rules, with_shipped
from coop_rules.vocabulary import ROW_NUMBER, Dataset
from flows.stages.decide import MonthResult
from schemas.inputs import INPUTS
from tests.flows.stages.compose import compute_month

Row = dict[str, str | None]

MONTH = "2026-04"
PROGRAM = "Azure Co-op"
PERIOD = "FY26"
FUND = "Marketing"
MPN = "4412907"
PLAN_ID = "CP26-0001"
RUN_ID = "test-run"

_UNSET: Any = object()


def program(**overrides: str | None) -> Row:
    """A program period: Azure Co-op FY26, 2025-07-01 to 2026-06-30."""
    return {
        "program": PROGRAM,
        "period": PERIOD,
        "period_start": "2025-07-01",
        "period_end": "2026-06-30",
    } | overrides


def fy25(**overrides: str | None) -> Row:
    """The period before the default one: FY25, 2024-07-01 to 2025-06-30."""
    defaults = {"period": "FY25", "period_start": "2024-07-01", "period_end": "2025-06-30"}
    return program(**(defaults | overrides))


def plan(**overrides: str | None) -> Row:
    """An Approved USD plan of partner 4412907, submitted inside the period."""
    return {
        "plan_id": PLAN_ID,
        "mpn_id": MPN,
        "program": PROGRAM,
        "fund": FUND,
        "period": PERIOD,
        "market": "United States",
        "currency": "USD",
        "reviewer_email": "megan.bowen@example.com",
        "status": "Approved",
        "created_on": "2025-07-15",
        "first_submitted_on": "2025-07-29",
        "last_submitted_on": "2025-08-05",
    } | overrides


def other_plan(**overrides: str | None) -> Row:
    """A second valid plan, of another partner (1093384)."""
    return plan(**({"plan_id": "CP26-0002", "mpn_id": "1093384"} | overrides))


def limit(**overrides: str | None) -> Row:
    """A limit of 10000.00 for the default plan, effective from 2025-07."""
    return {
        "plan_id": PLAN_ID,
        "effective_month": "2025-07",
        "limit_amount": "10000.00",
    } | overrides


def earning(**overrides: str | None) -> Row:
    """A 100.00 USD earning of April 2026 for the default plan's key."""
    return {
        "earning_id": "ERN-0001",
        "mpn_id": MPN,
        "program": PROGRAM,
        "fund": FUND,
        "earning_month": MONTH,
        "amount": "100.00",
        "currency": "USD",
    } | overrides


def earnings(*amounts: str, **overrides: str | None) -> list[Row]:
    """One earning per amount, with ids ERN-0001, ERN-0002, ..."""
    return [
        earning(earning_id=f"ERN-{n:04d}", amount=amount, **overrides)
        for n, amount in enumerate(amounts, start=1)
    ]


def campaign(**overrides: str | None) -> Row:
    """A campaign of the default plan."""
    return {"campaign_id": "CMP-1001", "plan_id": PLAN_ID, "name": "Cloud Webinars"} | overrides


def activity(**overrides: str | None) -> Row:
    """An activity of the default campaign."""
    return {
        "activity_id": "ACT-5001",
        "campaign_id": "CMP-1001",
        "name": "Customer workshop",
        "countries": "US;CA",
    } | overrides


def payment_profile(**overrides: str | None) -> Row:
    """An enrolled payment profile of the default partner."""
    return {
        "mpn_id": MPN,
        "profile_status": "Enrolled",
        "action_required_since": None,
    } | overrides


def text_frame(dataset: Dataset, rows: list[Row]) -> pl.DataFrame:
    """A frame as `flows.reading.read_text` gives it: every column text, plus `row_number`
    from 1."""
    columns = INPUTS[dataset].columns
    for row in rows:
        unknown = set(row) - set(columns)
        assert not unknown, f"{dataset.value} has no column {sorted(unknown)}"
    data = {name: [row.get(name) for row in rows] for name in columns}
    frame = pl.DataFrame(data, schema=dict.fromkeys(columns, pl.String))
    return frame.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_NUMBER))


def inputs(
    *,
    programs: list[Row] = _UNSET,
    plans: list[Row] = _UNSET,
    limits: list[Row] = _UNSET,
    earnings: list[Row] = _UNSET,
    profiles: list[Row] = _UNSET,
    campaigns: list[Row] | None = None,
    activities: list[Row] | None = None,
) -> dict[Dataset, pl.DataFrame | None]:
    """The text frames of one run; a dataset not given gets the default valid row, and the
    optional campaigns and activities are absent unless given."""
    given = {
        Dataset.PROGRAMS: [program()] if programs is _UNSET else programs,
        Dataset.PLANS: [plan()] if plans is _UNSET else plans,
        Dataset.PLAN_LIMITS: [limit()] if limits is _UNSET else limits,
        Dataset.EARNINGS: [earning()] if earnings is _UNSET else earnings,
        Dataset.PAYMENT_PROFILES: [payment_profile()] if profiles is _UNSET else profiles,
        Dataset.CAMPAIGNS: campaigns,
        Dataset.ACTIVITIES: activities,
    }
    return {
        dataset: None if rows is None else text_frame(dataset, rows)
        for dataset, rows in given.items()
    }


_DEFAULT_RULES = files("coop_rules").joinpath("rules.toml").read_text(encoding="utf-8")


def settings(**overrides: Any) -> RuleSettings:
    """The shipped rules (coop_rules/rules.toml), with settings replaced and validated again."""
    base = parse_rules(_DEFAULT_RULES, _DEFAULT_RULES)
    if not overrides:
        return base
    data = base.model_dump()
    if "currencies" in overrides and "minimum_payment" not in overrides:
        del data["minimum_payment"]  # as in a rules file: the shipped minimums of its currencies
    return RuleSettings.model_validate(with_shipped(data | overrides, base.model_dump()))


def paid_before_frame(paid_before: dict[str, str] | None) -> pl.DataFrame:
    """`paid_before_amount` per plan, from plan id -> amount text."""
    paid_before = paid_before or {}
    return pl.DataFrame(
        {
            "plan_id": list(paid_before),
            "paid_before_amount": [Decimal(v) for v in paid_before.values()],
        },
        schema={"plan_id": pl.String, "paid_before_amount": MONEY},
    )


def run(
    *,
    month: str = MONTH,
    rules: RuleSettings | None = None,
    paid_before: dict[str, str] | None = None,
    **datasets: Any,
) -> MonthResult:
    """The stages validate, route and decide over the given rows (see `inputs`)."""
    rules = rules or settings()
    return compute_month(inputs(**datasets), month, rules, RUN_ID, paid_before_frame(paid_before))[
        0
    ]


def payout(result: MonthResult, plan_id: str = PLAN_ID) -> dict[str, Any]:
    """The payout row of `plan_id` (exactly one)."""
    rows = result.payouts.filter(pl.col("plan_id") == plan_id)
    assert rows.height == 1, f"expected one payout row for {plan_id}, got {rows.height}"
    return rows.row(0, named=True)


def problems(result: MonthResult, source: Dataset | None = None) -> list[tuple]:
    """(source, row_number, code, column, value) of each exception, optionally of one source."""
    frame = result.exceptions
    if source is not None:
        frame = frame.filter(pl.col("source") == source.value)
    return [
        tuple(row)
        for row in frame.select("source", "row_number", "code", "column", "value").iter_rows()
    ]


def money(text: str | None) -> Decimal | None:
    """Decimal from text (None stays None), to compare with Decimal(18, 2) values."""
    return None if text is None else Decimal(text)


def write_folder(folder: Path, datasets: dict[str, list[Row]]) -> Path:
    """An input folder: one CSV of text columns per dataset stem, as `flows/reading.py` reads them.
    Without a `payment_profiles` entry, every partner of the plans is enrolled."""
    folder.mkdir(parents=True, exist_ok=True)
    if "payment_profiles" not in datasets:
        partners = sorted({row.get("mpn_id") or "" for row in datasets.get("plans", [])} - {""})
        datasets = {**datasets, "payment_profiles": [payment_profile(mpn_id=m) for m in partners]}
    for name, rows in datasets.items():
        columns = rows[0] if rows else INPUTS[Dataset(name)].columns
        pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String)).write_csv(
            folder / f"{name}.csv"
        )
    return folder
