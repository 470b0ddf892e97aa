"""Keys and cross-checks of the input datasets (docs/inputs.md), called directly."""

from __future__ import annotations

import polars as pl
import pytest

from coop_rules import integrity
from coop_rules.integrity import OK, PLAN_KEY
from coop_rules.vocabulary import Code, Dataset
from schemas.inputs import INPUTS, parse_text
from tests.coop_rules import builders as b

COLUMNS = ("row_number", "record_key", "code", "column", "value")


def typed(dataset: Dataset, rows: list[b.Row], ok: list[bool] | None = None) -> pl.DataFrame:
    """Rows parsed to their types, with `OK` (every row valid unless given)."""
    frame = parse_text(b.text_frame(dataset, rows), INPUTS[dataset])
    return frame.with_columns(pl.Series(OK, ok or [True] * frame.height, dtype=pl.Boolean))


def found(exceptions: pl.DataFrame) -> list[tuple]:
    return sorted(exceptions.select(COLUMNS).rows(), key=lambda r: (r[0], r[2]))


# --- DUPLICATE_KEY / DUPLICATE_PLAN: every row sharing the key --------------------------------


def test_duplicate_key_reports_every_row_sharing_it() -> None:
    frame = b.text_frame(
        Dataset.EARNINGS,
        [
            b.earning(earning_id="E1"),
            b.earning(earning_id="E2"),
            b.earning(earning_id="E1", amount="1957.00"),
            b.earning(earning_id="E1", amount="5.00"),
        ],
    )
    rows = found(integrity.duplicate_keys(frame, ["earning_id"], "earning_id"))
    assert rows == [
        (1, "E1", "DUPLICATE_KEY", "earning_id", "E1"),
        (3, "E1", "DUPLICATE_KEY", "earning_id", "E1"),
        (4, "E1", "DUPLICATE_KEY", "earning_id", "E1"),
    ]


def test_duplicate_key_over_several_columns_names_no_single_column() -> None:
    frame = b.text_frame(
        Dataset.PLAN_LIMITS,
        [b.limit(), b.limit(effective_month="2026-01"), b.limit(limit_amount="6500.00")],
    )
    rows = found(integrity.duplicate_keys(frame, ["plan_id", "effective_month"], "plan_id"))
    assert rows == [
        (1, b.PLAN_ID, "DUPLICATE_KEY", None, None),
        (3, b.PLAN_ID, "DUPLICATE_KEY", None, None),
    ]


def test_duplicate_key_ignores_rows_with_an_empty_key() -> None:
    frame = b.text_frame(Dataset.EARNINGS, [b.earning(earning_id=None), b.earning(earning_id=None)])
    assert integrity.duplicate_keys(frame, ["earning_id"], "earning_id").is_empty()


def test_duplicate_plan_code() -> None:
    frame = b.text_frame(Dataset.PLANS, [b.plan(), b.other_plan(), b.plan(plan_id="CP26-0003")])
    rows = found(integrity.duplicate_keys(frame, PLAN_KEY, "plan_id", Code.DUPLICATE_PLAN))
    assert rows == [
        (1, "CP26-0001", "DUPLICATE_PLAN", None, None),
        (3, "CP26-0003", "DUPLICATE_PLAN", None, None),
    ]


# --- UNKNOWN_REFERENCE -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parent_ok", "child_ok", "expected"),
    [
        pytest.param([True], [True, True],
                     [(2, "CP26-0999", "UNKNOWN_REFERENCE", "plan_id", "CP26-0999")],
                     id="UNKNOWN_REFERENCE-no-such-parent"),
        pytest.param([False], [True, True], [
            (1, "CP26-0001", "UNKNOWN_REFERENCE", "plan_id", "CP26-0001"),
            (2, "CP26-0999", "UNKNOWN_REFERENCE", "plan_id", "CP26-0999"),
        ], id="UNKNOWN_REFERENCE-parent-row-is-an-exception"),
        pytest.param([True], [True, False], [], id="child-already-an-exception-not-reported-again"),
    ],
)  # fmt: skip
def test_unknown_references(parent_ok: list[bool], child_ok: list[bool], expected: list) -> None:
    plans = typed(Dataset.PLANS, [b.plan()], parent_ok)
    limits = typed(Dataset.PLAN_LIMITS, [b.limit(), b.limit(plan_id="CP26-0999")], child_ok)
    rows = integrity.unknown_references(limits, plans, ["plan_id"], "plan_id", "plans")
    assert found(rows) == expected


def test_unknown_reference_message_tells_missing_from_invalid_parent() -> None:
    plans = typed(Dataset.PLANS, [b.plan()], [False])
    limits = typed(Dataset.PLAN_LIMITS, [b.limit(), b.limit(plan_id="CP26-0999")])
    rows = integrity.unknown_references(limits, plans, ["plan_id"], "plan_id", "plans")
    messages = dict(zip(rows["record_key"], rows["message"], strict=True))
    assert messages["CP26-0001"] == (
        "plan_id 'CP26-0001' refers to a row of plans that has an exception itself"
    )
    assert messages["CP26-0999"] == "plan_id 'CP26-0999' does not exist in plans"


def test_unknown_reference_over_two_columns_names_the_last() -> None:
    programs = typed(Dataset.PROGRAMS, [b.program()])
    plans = typed(Dataset.PLANS, [b.plan(), b.other_plan(period="FY27")])
    rows = integrity.unknown_references(plans, programs, ["program", "period"], "plan_id", "x")
    assert found(rows) == [(2, "CP26-0002", "UNKNOWN_REFERENCE", "period", "FY27")]


# --- INCONSISTENT_DATES ----------------------------------------------------------------------

PROGRAM_DATE_CASES = [
    pytest.param(
        [b.program(period_start="2025-06-30", period_end="2024-07-01")],
        [(1, "Azure Co-op", "INCONSISTENT_DATES", "period_end", "2024-07-01")],
        id="INCONSISTENT_DATES-period_end-before-period_start",
    ),
    pytest.param(
        [b.program(period_start="2025-07-01", period_end="2025-07-01")],
        [],
        id="one-day-period-is-consistent",
    ),
    pytest.param(
        [b.fy25(), b.program()],
        [],
        id="adjacent-periods-do-not-overlap",
    ),
    pytest.param(
        [b.fy25(period_end="2025-07-01"), b.program()],
        [
            (1, "Azure Co-op", "INCONSISTENT_DATES", "period_start", "2024-07-01"),
            (2, "Azure Co-op", "INCONSISTENT_DATES", "period_start", "2025-07-01"),
        ],
        id="INCONSISTENT_DATES-overlapping-periods-every-row",
    ),
    pytest.param(
        [b.fy25(), b.program(), b.program(program="Security Co-op", period_start="2025-06-01")],
        [],
        id="periods-of-other-programs-may-overlap",
    ),
]


@pytest.mark.parametrize(("rows", "expected"), PROGRAM_DATE_CASES)
def test_program_dates(rows: list[b.Row], expected: list) -> None:
    programs = typed(Dataset.PROGRAMS, rows)
    exceptions = integrity.program_dates(programs)
    assert [(r, k, c, col, str(v)) for r, k, c, col, v in found(exceptions)] == expected


PLAN_DATE_CASES = [
    pytest.param(b.plan(), [], id="consistent"),
    pytest.param(
        b.plan(first_submitted_on=None, last_submitted_on=None),
        [("MISSING_VALUE", "first_submitted_on")],
        id="MISSING_VALUE-Approved-without-first_submitted_on",
    ),
    *[
        pytest.param(
            b.plan(status=status, first_submitted_on=None, last_submitted_on=None),
            [("MISSING_VALUE", "first_submitted_on")],
            id=f"MISSING_VALUE-{status.replace(' ', '_')}-without-first_submitted_on",
        )
        for status in ("Submitted", "Under review", "Action required", "Rejected")
    ],
    pytest.param(
        b.plan(status="Editing", first_submitted_on=None, last_submitted_on=None),
        [],
        id="Editing-may-have-no-submission-dates",
    ),
    pytest.param(
        b.plan(first_submitted_on="2025-10-14", last_submitted_on="2025-09-30"),
        [("INCONSISTENT_DATES", "last_submitted_on")],
        id="INCONSISTENT_DATES-last_submitted_on-before-first_submitted_on",
    ),
    pytest.param(
        b.plan(first_submitted_on="2025-10-14", last_submitted_on="2025-10-14"),
        [],
        id="last_submitted_on-equal-to-first-is-consistent",
    ),
    pytest.param(
        b.plan(created_on="2025-08-01", first_submitted_on="2025-07-29"),
        [("INCONSISTENT_DATES", "first_submitted_on")],
        id="INCONSISTENT_DATES-first_submitted_on-before-created_on",
    ),
    pytest.param(
        b.plan(status="Editing", first_submitted_on=None, last_submitted_on="2025-10-14"),
        [("INCONSISTENT_DATES", "last_submitted_on")],
        id="INCONSISTENT_DATES-last_submitted_on-without-first",
    ),
]


@pytest.mark.parametrize(("row", "expected"), PLAN_DATE_CASES)
def test_plan_dates(row: b.Row, expected: list[tuple[str, str]]) -> None:
    exceptions = integrity.plan_dates(typed(Dataset.PLANS, [row]), b.settings())
    assert exceptions.select("code", "column").rows() == expected
    assert exceptions.get_column("record_key").to_list() == [b.PLAN_ID] * len(expected)


# --- INVALID_AMOUNT of a limit against its plan's currency ------------------------------------

LIMIT_CURRENCY_CASES = [
    pytest.param("USD", "10000.005", True, id="INVALID_AMOUNT-USD-3-decimals"),
    pytest.param("USD", "10000.5", False, id="USD-1-decimal-fits"),
    pytest.param("USD", "10000.50", False, id="USD-2-decimals-fit"),
    pytest.param("JPY", "1500.5", True, id="INVALID_AMOUNT-JPY-a-decimal"),
    pytest.param("JPY", "1500", False, id="JPY-whole-fits"),
]


@pytest.mark.parametrize(("currency", "text", "invalid"), LIMIT_CURRENCY_CASES)
def test_limit_currency(currency: str, text: str, invalid: bool) -> None:
    plans = typed(Dataset.PLANS, [b.plan(currency=currency)])
    limits = b.text_frame(Dataset.PLAN_LIMITS, [b.limit(limit_amount=text)]).with_columns(
        pl.lit(True).alias(OK)
    )
    exceptions = integrity.limit_currency(limits, plans, b.settings())
    expected = [(1, b.PLAN_ID, "INVALID_AMOUNT", "limit_amount", text)] if invalid else []
    assert found(exceptions) == expected


# --- MISSING_VALUE: a payment profile needing action has no date to count the hold from -------

PROFILE_DATE_CASES = [
    pytest.param(
        b.payment_profile(profile_status="Action required", action_required_since=None),
        True,
        id="MISSING_VALUE-action_required_since-of-Action-required",
    ),
    pytest.param(
        b.payment_profile(profile_status="Action required", action_required_since="2026-01-15"),
        False,
        id="Action-required-with-its-date",
    ),
    pytest.param(b.payment_profile(), False, id="Enrolled-without-a-date"),
    pytest.param(
        b.payment_profile(action_required_since="2026-01-15"), False, id="Enrolled-with-a-date"
    ),
]


@pytest.mark.parametrize(("row", "missing"), PROFILE_DATE_CASES)
def test_profile_dates(row: b.Row, missing: bool) -> None:
    exceptions = integrity.profile_dates(typed(Dataset.PAYMENT_PROFILES, [row]))
    expected = [(1, b.MPN, "MISSING_VALUE", "action_required_since", None)] if missing else []
    assert found(exceptions) == expected
    assert all(exceptions.get_column("message"))


def test_profile_dates_skip_rows_with_an_exception() -> None:
    row = b.payment_profile(profile_status="Action required")
    assert integrity.profile_dates(typed(Dataset.PAYMENT_PROFILES, [row], [False])).is_empty()
