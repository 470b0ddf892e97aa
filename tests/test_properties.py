"""Properties of a month's rules over generated small inputs (docs/inputs.md, docs/payouts.md),
without I/O.

Text frames for programs, plans, limits, earnings (and sometimes campaigns and activities) are
drawn with good and bad values mixed in: impossible dates, overlapping periods, repeated keys,
unknown currencies, amounts that are not plain decimals or do not fit. the stages validate,
route and decide run on them directly, and each property is checked against a plain-Python
reading of docs/payouts.md, not against the code's own figures.

Budget: the "ci" profile of tests/conftest.py; HYPOTHESIS_PROFILE=long for 2000.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from coop_rules.integrity import OK
from coop_rules.money import MONEY
from coop_rules.settings import RuleSettings, parse_rules
from coop_rules.vocabulary import ROW_NUMBER, Code, Dataset, Outcome
from flows.rules import shipped_rules_text
from flows.stages.decide import MonthResult
from schemas.inputs import EXCEPTION_ORDER, INPUTS
from tests.flows.stages.compose import compute_month

MONTH = "2026-04"
FIRST_DAY = date(2026, 4, 1)
RUN_ID = "property-run"
RULES = parse_rules(shipped_rules_text(), shipped_rules_text())

PROGRAMS = ["Azure", "Security", "Dynamics"]
PERIODS = {
    "FY25": ("2024-07-01", "2025-06-30"),
    "FY26": ("2025-07-01", "2026-06-30"),
    "FY27": ("2026-07-01", "2027-06-30"),
}
GOOD_DATES = ["2024-07-01", "2025-06-30", "2025-07-01", "2025-07-14", "2025-12-31", "2026-04-01"]
LATE_DATES = ["2026-06-30", "2026-09-28", "2026-09-29", "2026-10-05"]
BAD_DATES = ["2026-02-30", "2026-13-01", "2025/07/14", "26-04-01"]
PLAN_IDS = [f"P{n}" for n in range(5)]
PARTNERS = ["100001", "100002", "100003", "100004", "100005", "100006"]
FUNDS = ["M", "D"]
CURRENCIES = ["USD", "EUR", "JPY"]
# Unusual amount text: not plain decimals, too long, and plain decimals that look odd.
ODD_AMOUNTS = [
    "NaN",
    "Infinity",
    "1e3",
    "$5",
    "€5",
    "1,000.00",
    "12345678901234567890",
    "abc",
    "-0",
    "+5",
    ".5",
    "5.",
]
OTHER_MONTHS = ["2026-03", "2026-05"]
BAD_MONTHS = ["2026-13", "26-04", "2026-02-30", "April"]

AMOUNT_TEXT = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")
MONTH_TEXT = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
MAX_INTEGER_DIGITS = 16

Row = tuple[str | None, ...]


# ---------------------------------------------------------------------------------------------
# Strategies


@dataclass(frozen=True)
class Noise:
    """Which values of one generated month are bad: each with probability `rate`, drawn per
    example (0 gives a clean month that routes and pays), by a generator hypothesis replays.
    Shapes (how many rows, which keys) are hypothesis draws; per-value noise is not, so that
    hypothesis' liking for repeated and boundary choices does not make every month bad."""

    rng: random.Random
    rate: float

    def __call__(self, good: Any, bad: list, chance: float | None = None) -> Any:
        """`good`, or one of `bad` (None is an empty field) with the example's rate."""
        hit = self.rng.random() < (self.rate if chance is None else chance)
        return self.rng.choice(bad) if hit else good


@st.composite
def noises(draw: st.DrawFn) -> Noise:
    # The first rate is where hypothesis starts and shrinks to: a little noise.
    rate = draw(st.sampled_from([0.05, 0.0, 0.02, 0.1, 0.25]))
    return Noise(draw(st.randoms(use_true_random=True)), rate)


def amount_text(noise: Noise, currency: str | None) -> str | None:
    """Plain decimal text that mostly fits its currency (a reversal one time in six); with
    the noise, too many decimals or not a plain decimal at all."""
    places = 0 if currency == "JPY" else noise.rng.choice([2, 2, 2, 0, 1])
    units = noise.rng.randint(0, 2_000_000 if places else 20_000)
    text = noise("", ["-"], chance=1 / 6) + format(Decimal(units).scaleb(-places), "f")
    return noise(text, [*ODD_AMOUNTS, f"{text}5", None])


@st.composite
def program_rows(draw: st.DrawFn, noise: Noise) -> list[Row]:
    """Each program's periods, with the noise: a wrong or unreadable date, no period that
    holds M, or a second Azure row overlapping FY26."""
    rows = []
    wrong = [*GOOD_DATES, *LATE_DATES, *BAD_DATES, None]
    for program in PROGRAMS:
        periods = draw(st.sampled_from([["FY26"], ["FY25", "FY26"], ["FY26", "FY27"]]))
        for period in noise(periods, [["FY25"]]):
            start, end = PERIODS[period]
            rows.append((program, period, noise(start, wrong), noise(end, wrong)))
    rows.extend(noise([], [[("Azure", "FY26b", "2026-03-01", "2027-02-28")]]))
    return rows


@dataclass(frozen=True)
class PlanKey:
    plan_id: str
    mpn_id: str
    fund: str
    program: str
    period: str
    currency: str


@st.composite
def plan_keys(draw: st.DrawFn, noise: Noise) -> list[PlanKey]:
    """The plans the other datasets refer to; with the noise, ids and keys repeat."""
    return [
        PlanKey(
            plan_id=noise(f"P{n}", PLAN_IDS),
            mpn_id=noise(PARTNERS[n], PARTNERS),
            fund=draw(st.sampled_from(FUNDS)),
            program=draw(st.sampled_from(PROGRAMS)),
            period=noise("FY26", ["FY25", "FY27"]),
            currency=draw(st.sampled_from(CURRENCIES)),
        )
        for n in range(noise(draw(st.integers(1, 5)), [0], chance=0.05))
    ]


def plan_rows(noise: Noise, keys: list[PlanKey]) -> list[Row]:
    """A plan row per key; a quarter of them not Approved, the rest of the noise in values."""
    rows = []
    for key in keys:
        created = noise("2025-07-14", [*GOOD_DATES, *LATE_DATES, *BAD_DATES])
        first = noise("2025-07-21", [*GOOD_DATES, *LATE_DATES, *BAD_DATES, None])
        last = noise(first, [*GOOD_DATES, *LATE_DATES, None])
        status = noise("Approved", [*RULES.statuses.all, "Pending", None], chance=0.25)
        rows.append(
            (
                key.plan_id,
                noise(key.mpn_id, ["12AB", None]),
                key.program,
                key.fund,
                key.period,
                "Somewhere",
                noise(key.currency, ["XYZ", "usd", None]),
                noise("a@example.com", ["not an email", None]),
                status,
                created,
                first,
                last,
            )
        )
    return rows


@st.composite
def limit_rows(draw: st.DrawFn, noise: Noise, keys: list[PlanKey]) -> list[Row]:
    """Zero to two limits per plan, effective before or in M (sometimes after), 0 to 30000."""
    rows = []
    for key in keys:
        for _ in range(draw(st.integers(0, 2))):
            month = noise(draw(st.sampled_from(["2025-07", "2026-04"])), BAD_MONTHS)
            month = noise(month, ["2026-05"], chance=0.1)
            units = noise.rng.randint(0, 30_000)
            limit = f"{units}" if key.currency == "JPY" else f"{units}.00"
            limit = noise(limit, ["-500.00", "12.345", "1500.5", "NaN", None])
            rows.append((noise(key.plan_id, ["P9"]), month, limit))
    return rows


@st.composite
def earning_rows(draw: st.DrawFn, noise: Noise, keys: list[PlanKey]) -> list[Row]:
    """Earnings mostly of the plans' keys and currencies in M (one in ten in another known
    currency); a fifth for a partner with no plan; with the noise, other months, repeated ids
    and bad values."""
    rows = []
    for n in range(noise(draw(st.integers(1, 10)), [0], chance=0.05)):
        if keys and noise.rng.random() < 0.8:
            key = noise.rng.choice(keys)
            mpn_id, fund, program, currency = key.mpn_id, key.fund, key.program, key.currency
        else:
            mpn_id, fund = PARTNERS[-1], FUNDS[0]
            program, currency = noise.rng.choice(PROGRAMS), noise.rng.choice(CURRENCIES)
        currency = noise(noise(currency, CURRENCIES, chance=0.1), ["XYZ", "usd", None])
        rows.append(
            (
                noise(f"E{n}", ["E0", None]),
                noise(mpn_id, ["12AB", None]),
                program,
                fund,
                noise(MONTH, [*OTHER_MONTHS, *BAD_MONTHS, None]),
                amount_text(noise, currency),
                currency,
            )
        )
    return rows


def text_frame(dataset: Dataset, rows: list[Row]) -> pl.DataFrame:
    """Rows as `flows.reading.read_text` hands them over: text columns and the 1-based
    `ROW_NUMBER`."""
    columns = INPUTS[dataset].columns
    return pl.DataFrame(
        [dict(zip(columns, row, strict=True)) for row in rows],
        schema={name: pl.String for name in columns},
    ).with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_NUMBER))


@dataclass(frozen=True)
class MonthInputs:
    text: dict[Dataset, pl.DataFrame | None]
    paid_before: pl.DataFrame
    settings: RuleSettings


@st.composite
def month_inputs(draw: st.DrawFn) -> MonthInputs:
    noise = draw(noises())
    keys = draw(plan_keys(noise))
    text: dict[Dataset, pl.DataFrame | None] = {
        Dataset.PROGRAMS: text_frame(Dataset.PROGRAMS, draw(program_rows(noise))),
        Dataset.PLANS: text_frame(Dataset.PLANS, plan_rows(noise, keys)),
        Dataset.PLAN_LIMITS: text_frame(Dataset.PLAN_LIMITS, draw(limit_rows(noise, keys))),
        Dataset.EARNINGS: text_frame(Dataset.EARNINGS, draw(earning_rows(noise, keys))),
        Dataset.PAYMENT_PROFILES: text_frame(
            Dataset.PAYMENT_PROFILES,
            [(mpn, "Enrolled", None) for mpn in sorted({key.mpn_id for key in keys})],
        ),
        Dataset.CAMPAIGNS: None,
        Dataset.ACTIVITIES: None,
    }
    if draw(st.integers(0, 2)) == 0:
        # Campaigns and activities given: a plan without an activity is HELD (NO_ACTIVITY).
        campaigns = [
            (f"C{n}", noise(key.plan_id, ["P9"]), "Campaign")
            for n, key in enumerate(keys)
            if noise.rng.random() < 0.8
        ]
        activities = [
            (f"A{n}", campaign[0], "Activity", noise("US;CA", ["United States"]))
            for n, campaign in enumerate(campaigns)
            if noise.rng.random() < 0.8
        ]
        text[Dataset.CAMPAIGNS] = text_frame(Dataset.CAMPAIGNS, campaigns)
        text[Dataset.ACTIVITIES] = text_frame(Dataset.ACTIVITIES, activities)
    paid = draw(st.dictionaries(st.sampled_from(PLAN_IDS), st.integers(0, 2_000_000), max_size=5))
    paid_before = pl.DataFrame(
        {
            "plan_id": list(paid),
            "paid_before_amount": [Decimal(cents).scaleb(-2) for cents in paid.values()],
        },
        schema={"plan_id": pl.String, "paid_before_amount": MONEY},
    )
    basis = draw(st.sampled_from(["cumulative", "monthly"]))
    return MonthInputs(text, paid_before, RULES.model_copy(update={"cap_basis": basis}))


def compute(inputs: MonthInputs) -> tuple[MonthResult, dict[Dataset, pl.DataFrame]]:
    result, references = compute_month(
        inputs.text, MONTH, inputs.settings, RUN_ID, inputs.paid_before
    )
    return result, references.frames


# ---------------------------------------------------------------------------------------------
# A plain-Python reading of the rules (docs/inputs.md, docs/payouts.md)


def is_real_month(text: str | None) -> bool:
    return text is not None and MONTH_TEXT.match(text) is not None


def in_scope_rows(earnings: pl.DataFrame) -> dict[int, dict]:
    """Rows of M, and rows whose month cannot be read (they belong to every run)."""
    return {
        row[ROW_NUMBER]: row
        for row in earnings.iter_rows(named=True)
        if row["earning_month"] == MONTH or not is_real_month(row["earning_month"])
    }


def fitting_amount(row: dict, settings: RuleSettings) -> Decimal | None:
    """The row's amount if its text is a plain decimal that fits its currency, else None."""
    text, currency = row["amount"], row["currency"]
    if text is None or currency not in settings.currencies or not AMOUNT_TEXT.match(text):
        return None
    whole, _, fraction = text.lstrip("+-").partition(".")
    if len(fraction) > settings.currencies[currency]:
        return None
    if len(whole.lstrip("0")) > MAX_INTEGER_DIGITS:
        return None
    return Decimal(text)


def earnings_exception_rows(result: MonthResult) -> pl.DataFrame:
    return result.exceptions.filter(pl.col("source") == Dataset.EARNINGS.value)


def expected_routing(
    frames: dict[Dataset, pl.DataFrame], rows: list[dict]
) -> dict[str, tuple[int, Decimal]]:
    """Per plan, the count and net sum of `rows` (rows without exceptions), routed by hand:
    the valid period of the row's program holding the first day of M, the one plan with the
    row's key, valid and of the row's currency. Fails if a row has nowhere to go."""
    periods: dict[str, list[str]] = defaultdict(list)
    for program in frames[Dataset.PROGRAMS].filter(pl.col(OK)).iter_rows(named=True):
        if program["period_start"] <= FIRST_DAY <= program["period_end"]:
            periods[program["program"]].append(program["period"])
    plans: dict[tuple, list[dict]] = defaultdict(list)
    for plan in frames[Dataset.PLANS].iter_rows(named=True):
        key = (plan["mpn_id"], plan["fund"], plan["program"], plan["period"])
        if None not in key:
            plans[key].append(plan)
    routed: dict[str, tuple[int, Decimal]] = {}
    for row in rows:
        found = periods[row["program"]]
        assert len(found) == 1, f"row {row[ROW_NUMBER]} has no single period but no exception"
        matches = plans[(row["mpn_id"], row["fund"], row["program"], found[0])]
        assert len(matches) == 1, f"row {row[ROW_NUMBER]} has no single plan but no exception"
        plan = matches[0]
        assert plan[OK] and plan["currency"] == row["currency"], f"row {row[ROW_NUMBER]} misrouted"
        count, total = routed.get(plan["plan_id"], (0, Decimal(0)))
        routed[plan["plan_id"]] = (count + 1, total + Decimal(row["amount"]))
    return routed


def limit_in_force(frames: dict[Dataset, pl.DataFrame]) -> dict[str, Decimal]:
    """The limit of the latest valid effective_month <= M, per plan."""
    latest: dict[str, tuple[str, Decimal]] = {}
    for limit in frames[Dataset.PLAN_LIMITS].filter(pl.col(OK)).iter_rows(named=True):
        month = limit["effective_month"]
        if month <= MONTH and (
            limit["plan_id"] not in latest or month > latest[limit["plan_id"]][0]
        ):
            latest[limit["plan_id"]] = (month, limit["limit_amount"])
    return {plan_id: amount for plan_id, (_, amount) in latest.items()}


# ---------------------------------------------------------------------------------------------
# Properties: each a function of one computed month, all checked on every generated example
# (a month costs about 0.1 s of pandera validation, so the examples are shared).

Frames = dict[Dataset, pl.DataFrame]


def every_in_scope_row_ends_in_exactly_one_place(
    inputs: MonthInputs, result: MonthResult, frames: Frames
) -> None:
    """docs/payouts.md: routed to a payout row, or with at least one exception; never both, never
    neither."""
    text = inputs.text[Dataset.EARNINGS]
    assert text is not None
    scoped = in_scope_rows(text)
    excepted = set(earnings_exception_rows(result).get_column("row_number"))

    assert excepted <= set(scoped), "an exception names a row out of scope, or no row"
    clean = [row for number, row in sorted(scoped.items()) if number not in excepted]
    routed = expected_routing(frames, clean)
    payouts = {
        row["plan_id"]: (row["earnings_count"], row["earned_amount"])
        for row in result.payouts.iter_rows(named=True)
    }
    assert payouts == routed
    assert sum(count for count, _ in payouts.values()) + len(excepted) == len(scoped)
    assert result.reconciliation.rows_hold


def amounts_per_currency_balance(inputs: MonthInputs, result: MonthResult, frames: Frames) -> None:
    """docs/payouts.md, "Reconciliation": per currency, in-scope amounts that parse and fit =
    earned + exception amounts; an exception carries the row's amount exactly when it parses and
    fits, unchanged."""
    text = inputs.text[Dataset.EARNINGS]
    assert text is not None
    scoped = in_scope_rows(text)
    settings = inputs.settings

    expected: dict[str, Decimal] = defaultdict(Decimal)
    for row in scoped.values():
        amount = fitting_amount(row, settings)
        if amount is not None:
            expected[row["currency"]] += amount

    accounted: dict[str, Decimal] = defaultdict(Decimal)
    for payout in result.payouts.iter_rows(named=True):
        accounted[payout["currency"]] += payout["earned_amount"]
    for row_number, group in earnings_exception_rows(result).group_by("row_number"):
        amounts = set(group.get_column("amount"))
        assert len(amounts) == 1, "the exceptions of one row disagree on its amount"
        amount = amounts.pop()
        row = scoped[row_number[0]]
        assert amount == fitting_amount(row, settings)
        if amount is not None:
            assert set(group.get_column("currency")) == {row["currency"]}
            accounted[row["currency"]] += amount

    def nonzero(sums: dict[str, Decimal]) -> dict[str, Decimal]:
        return {currency: total for currency, total in sums.items() if total != 0}

    assert nonzero(accounted) == nonzero(expected)
    assert result.reconciliation.amounts_hold


def payable_stays_within_earned_and_the_room_left(
    inputs: MonthInputs, result: MonthResult, frames: Frames
) -> None:
    """docs/payouts.md, "The cap": earned = payable + unpaid; 0 <= payable <= max(earned, 0);
    payable <= room (limit - paid_before under cumulative, never below 0; the limit under
    monthly)."""
    limits = limit_in_force(frames)
    paid = dict(inputs.paid_before.iter_rows())
    zero = Decimal("0.00")

    for row in result.payouts.iter_rows(named=True):
        earned, payable = row["earned_amount"], row["payable_amount"]
        assert earned == payable + row["unpaid_amount"]
        assert zero <= payable <= max(earned, zero)
        assert row["limit_amount"] == limits.get(row["plan_id"])
        assert row["paid_before_amount"] == paid.get(row["plan_id"], zero)
        if row["outcome"] != Outcome.PAY:
            assert payable == zero
            continue
        limit = row["limit_amount"]
        assert limit is not None
        if inputs.settings.cap_basis == "cumulative":
            room = max(zero, limit - row["paid_before_amount"])
        else:
            room = limit
        assert payable <= room
        assert payable == min(max(earned, zero), room)


def every_exception_has_a_code_and_a_sentence(
    inputs: MonthInputs, result: MonthResult, frames: Frames
) -> None:
    codes = {code.value for code in Code}
    for row in result.exceptions.iter_rows(named=True):
        assert row["code"] in codes
        assert row["message"], row
        assert row["row_number"] >= 1


def exceptions_are_in_the_published_order(
    inputs: MonthInputs, result: MonthResult, frames: Frames
) -> None:
    """By file, row, code and column, whatever order the chunks and checks found them in."""
    ordered = result.exceptions.sort(*EXCEPTION_ORDER, nulls_last=True, maintain_order=True)
    assert result.exceptions.equals(ordered)


PROPERTIES = (
    every_in_scope_row_ends_in_exactly_one_place,
    amounts_per_currency_balance,
    payable_stays_within_earned_and_the_room_left,
    every_exception_has_a_code_and_a_sentence,
    exceptions_are_in_the_published_order,
)


@given(month_inputs())
def test_month_properties_hold(inputs: MonthInputs) -> None:
    result, frames = compute(inputs)
    for check in PROPERTIES:
        check(inputs, result, frames)
    assert result.reconciliation.holds


@given(month_inputs())
def test_recomputing_the_same_inputs_gives_identical_frames(inputs: MonthInputs) -> None:
    first, _ = compute(inputs)
    second, _ = compute(inputs)
    assert first.payouts.equals(second.payouts)
    assert first.exceptions.equals(second.exceptions)
    assert first.totals.equals(second.totals)
    assert first.reconciliation == second.reconciliation


@given(month_inputs(), st.integers(min_value=1, max_value=7))
def test_earnings_in_chunks_give_the_same_month(inputs: MonthInputs, chunk_rows: int) -> None:
    """The run reads earnings a chunk at a time; any chunking gives the whole file's result,
    duplicate earning_ids spanning chunks included."""
    whole, _ = compute(inputs)
    earnings = inputs.text[Dataset.EARNINGS]
    assert earnings is not None
    chunks = [earnings.slice(start, chunk_rows) for start in range(0, earnings.height, chunk_rows)]
    chunked, _ = compute_month(
        inputs.text, MONTH, inputs.settings, RUN_ID, inputs.paid_before, chunks
    )
    assert chunked.payouts.equals(whole.payouts)
    assert chunked.exceptions.equals(whole.exceptions)
    assert chunked.reconciliation == whole.reconciliation


@given(month_inputs(), st.integers(min_value=1, max_value=7))
def test_earnings_streamed_give_the_same_month(inputs: MonthInputs, slice_rows: int) -> None:
    """Stage route runs the whole file through lazy queries on the streaming engine and takes
    their exceptional rows and ledger in slices: the month is the chunked path's, to the row."""
    whole, _ = compute(inputs)
    streamed, _ = compute_month(
        inputs.text, MONTH, inputs.settings, RUN_ID, inputs.paid_before, streamed=slice_rows
    )
    assert streamed.payouts.equals(whole.payouts)
    assert streamed.exceptions.equals(whole.exceptions)
    assert streamed.reconciliation == whole.reconciliation
