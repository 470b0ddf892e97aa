"""Row exceptions from the input schemas and keys (docs/inputs.md, "Exception codes").

Each case puts a bad row second in its file, after a valid one, and asserts the exceptions of
that file: source, row_number (2), code, column and the raw value.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandera.polars as pa
import polars as pl
import pytest

from coop_rules.vocabulary import Code, Dataset
from flows.reading import InputFile, read_text
from schemas import inputs
from schemas.inputs import (
    INPUTS,
    empty_exceptions,
    failure_exceptions,
    passes,
    schema_for,
    validate_text,
)
from tests.coop_rules import builders as b

D = Decimal
PROGRAMS, PLANS, LIMITS = Dataset.PROGRAMS, Dataset.PLANS, Dataset.PLAN_LIMITS
EARNINGS, CAMPAIGNS, ACTIVITIES = Dataset.EARNINGS, Dataset.CAMPAIGNS, Dataset.ACTIVITIES
PROFILES = Dataset.PAYMENT_PROFILES

# A valid first row and the second row (with another key) that each case spoils.
FIRST_AND_SECOND = {
    PROGRAMS: (b.program(), b.program(program="Security Co-op")),
    PLANS: (b.plan(), b.other_plan()),
    LIMITS: (b.limit(), b.limit(effective_month="2025-08")),
    EARNINGS: (b.earning(), b.earning(earning_id="ERN-0002")),
    CAMPAIGNS: (b.campaign(), b.campaign(campaign_id="CMP-1002")),
    ACTIVITIES: (b.activity(), b.activity(activity_id="ACT-5002")),
}
ARGUMENT = {
    PROGRAMS: "programs",
    PLANS: "plans",
    LIMITS: "limits",
    EARNINGS: "earnings",
    CAMPAIGNS: "campaigns",
    ACTIVITIES: "activities",
}


def run_with_rows(dataset: Dataset, rows: list[b.Row], **more: list[b.Row]) -> b.MonthResult:
    """A run whose `dataset` holds `rows` (campaigns and activities are always given)."""
    datasets = {"campaigns": [b.campaign()], "activities": [b.activity()]} | more
    datasets[ARGUMENT[dataset]] = rows
    if dataset == PLANS:
        datasets.setdefault("limits", [b.limit(plan_id=row["plan_id"]) for row in rows[:1]])
    return b.run(**datasets)


def run_with_second(dataset: Dataset, **overrides: str | None) -> b.MonthResult:
    first, second = FIRST_AND_SECOND[dataset]
    return run_with_rows(dataset, [first, second | overrides])


def case(dataset: Dataset, column: str, raw: str | None, code: Code, **more: str | None):
    """One bad value in `column` of row 2 of `dataset`; `raw` is also the expected value."""
    name = f"{code.value}-{dataset.value}.{column}-{raw!s}"
    return pytest.param(dataset, {column: raw, **more}, [(code, column, raw)], id=name)


# --- INVALID_VALUE: one table per kind of column ------------------------------------------------

DIGITS = ["12AB", "44129O7", "12345", "12345678901", "-4412907", "4412907.0", "4 412 907"]
DATES = ["2026-02-30", "2025-02-29", "2025-13-01", "2025-7-1", "15/07/2025", "2025-07-15T00:00"]
MONTHS = ["2026-13", "2026-00", "2026-4", "2026-04-01", "April"]
AMOUNTS = [
    "NaN", "nan", "Infinity", "-Infinity", "inf", "1e3", "1E3", "1.5e2", "1,000.00", "1.000,00",
    "$5", "5 USD", "€5", "12.3.4", "--5", "+-5", ".", "0x10", "five",
]  # fmt: skip
CURRENCY_FORMS = ["usd", "US", "EURO", "€", "U$D"]
EMAILS = ["megan.bowen", "megan bowen@example.com", "@example.com", "megan@example"]
STATUSES = ["Pending approval", "approved", "APPROVED", "Approved!"]
COUNTRIES = ["United States", "US,CA", "us", "USA", "US;", ";US", "US;;CA", "US;C"]

INVALID_VALUE_CASES = [
    *(case(PLANS, "mpn_id", v, Code.INVALID_VALUE) for v in DIGITS),
    *(case(EARNINGS, "mpn_id", v, Code.INVALID_VALUE) for v in DIGITS),
    *(case(PROGRAMS, "period_start", v, Code.INVALID_VALUE) for v in DATES),
    case(PROGRAMS, "period_end", "2026-02-30", Code.INVALID_VALUE),
    *(case(PLANS, "created_on", v, Code.INVALID_VALUE) for v in DATES),
    case(PLANS, "first_submitted_on", "2025-09-31", Code.INVALID_VALUE),
    case(PLANS, "last_submitted_on", "2026-02-30", Code.INVALID_VALUE),
    *(case(LIMITS, "effective_month", v, Code.INVALID_VALUE) for v in MONTHS),
    *(case(EARNINGS, "earning_month", v, Code.INVALID_VALUE) for v in MONTHS),
    *(case(EARNINGS, "amount", v, Code.INVALID_VALUE) for v in AMOUNTS),
    *(case(LIMITS, "limit_amount", v, Code.INVALID_VALUE) for v in ["NaN", "1e4", "10,000.00"]),
    case(LIMITS, "limit_amount", "-5.00", Code.INVALID_VALUE),
    *(case(PLANS, "currency", v, Code.INVALID_VALUE) for v in CURRENCY_FORMS),
    *(case(EARNINGS, "currency", v, Code.INVALID_VALUE) for v in CURRENCY_FORMS),
    *(case(PLANS, "reviewer_email", v, Code.INVALID_VALUE) for v in EMAILS),
    *(case(PLANS, "status", v, Code.INVALID_VALUE) for v in STATUSES),
    *(case(ACTIVITIES, "countries", v, Code.INVALID_VALUE) for v in COUNTRIES),
]

# --- INVALID_AMOUNT: too many decimals for the currency, or out of Decimal(18, 2)'s range ------

INVALID_AMOUNT_CASES = [
    case(EARNINGS, "amount", "12.345", Code.INVALID_AMOUNT),
    case(EARNINGS, "amount", "0.001", Code.INVALID_AMOUNT),
    case(EARNINGS, "amount", "1500.5", Code.INVALID_AMOUNT, currency="JPY"),
    case(EARNINGS, "amount", "12345678901234567890", Code.INVALID_AMOUNT),
    case(EARNINGS, "amount", "-12345678901234567890.00", Code.INVALID_AMOUNT),
    case(EARNINGS, "amount", "12345678901234567.00", Code.INVALID_AMOUNT),
    case(LIMITS, "limit_amount", "10000.005", Code.INVALID_AMOUNT),
    case(LIMITS, "limit_amount", "12345678901234567890", Code.INVALID_AMOUNT),
]

# --- UNKNOWN_CURRENCY: a currency the rules do not list ----------------------------------------

UNKNOWN_CURRENCY_CASES = [
    case(EARNINGS, "currency", "XYZ", Code.UNKNOWN_CURRENCY),
    case(EARNINGS, "currency", "KWD", Code.UNKNOWN_CURRENCY, amount="1.000"),
    case(PLANS, "currency", "XYZ", Code.UNKNOWN_CURRENCY),
]


def _missing_cases():
    optional = {"first_submitted_on", "last_submitted_on"}
    for dataset in (PROGRAMS, PLANS, LIMITS, EARNINGS, CAMPAIGNS, ACTIVITIES):
        for column in INPUTS[dataset].columns:
            if dataset == PLANS and column in optional:
                continue
            yield case(dataset, column, None, Code.MISSING_VALUE)


MISSING_VALUE_CASES = [
    *_missing_cases(),
    pytest.param(
        PLANS,
        {"first_submitted_on": None, "last_submitted_on": None},
        [(Code.MISSING_VALUE, "first_submitted_on", None)],
        id="MISSING_VALUE-plans.first_submitted_on-of-an-Approved-plan",
    ),
]


@pytest.mark.parametrize(
    ("dataset", "overrides", "expected"),
    [
        *INVALID_VALUE_CASES,
        *INVALID_AMOUNT_CASES,
        *UNKNOWN_CURRENCY_CASES,
        *MISSING_VALUE_CASES,
    ],
)
def test_row_exception(dataset: Dataset, overrides: dict, expected: list[tuple]) -> None:
    result = run_with_second(dataset, **overrides)
    key_column = INPUTS[dataset].record_key
    record_key = (FIRST_AND_SECOND[dataset][1] | overrides)[key_column]
    assert b.problems(result, dataset) == [
        (dataset.value, 2, code.value, column, value) for code, column, value in expected
    ]
    found = result.exceptions.filter(pl.col("source") == dataset.value)
    assert found.get_column("record_key").to_list() == [record_key] * len(expected)
    assert all(message for message in found.get_column("message"))


def test_one_row_two_problems_each_reported() -> None:
    result = run_with_second(EARNINGS, mpn_id="44129O7", amount="$1200.00")
    assert sorted(b.problems(result, EARNINGS)) == [
        ("earnings", 2, "INVALID_VALUE", "amount", "$1200.00"),
        ("earnings", 2, "INVALID_VALUE", "mpn_id", "44129O7"),
    ]


@pytest.mark.parametrize(
    "amount",
    ["+100.00", "-0.50", ".50", "100", "9999999999999999.99", "-9999999999999999.99"],
)
def test_plain_decimal_amounts_are_valid(amount: str) -> None:
    limits = [b.limit(limit_amount="9999999999999999.99")]
    result = b.run(earnings=[b.earning(amount=amount)], limits=limits)
    assert b.problems(result, EARNINGS) == []
    assert b.payout(result)["earned_amount"] == D(amount)


VALID_FORMS = [
    pytest.param(PLANS, {"mpn_id": "500123"}, id="digits-6"),
    pytest.param(PLANS, {"mpn_id": "3090417712"}, id="digits-10"),
    pytest.param(PLANS, {"mpn_id": "00784512"}, id="digits-leading-zeros"),
    pytest.param(PROGRAMS, {"period_start": "2024-02-29"}, id="date-leap-day"),
    pytest.param(LIMITS, {"effective_month": "2025-12"}, id="month-December"),
    pytest.param(PLANS, {"reviewer_email": "a.b+c@example.co.uk"}, id="email"),
    pytest.param(ACTIVITIES, {"countries": "US"}, id="countries-one"),
    pytest.param(ACTIVITIES, {"countries": "US;CA;MX"}, id="countries-three"),
    pytest.param(LIMITS, {"limit_amount": "0.00"}, id="limit-zero"),
]


@pytest.mark.parametrize(("dataset", "overrides"), VALID_FORMS)
def test_valid_form(dataset: Dataset, overrides: dict) -> None:
    assert b.problems(run_with_second(dataset, **overrides), dataset) == []


def test_the_same_bad_value_on_many_rows_is_reported_on_each() -> None:
    rows = [b.earning(earning_id=f"E{n}", amount="NaN") for n in range(1, 4)]
    assert b.problems(b.run(earnings=rows), EARNINGS) == [
        ("earnings", n, "INVALID_VALUE", "amount", "NaN") for n in range(1, 4)
    ]


# --- INVALID_AMOUNT is never truncated into a payout -------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        pytest.param("12.345", "USD", id="INVALID_AMOUNT-USD-12.345-not-12.34"),
        pytest.param("1500.5", "JPY", id="INVALID_AMOUNT-JPY-1500.5-not-1500"),
        pytest.param("12345678901234567890", "USD", id="INVALID_AMOUNT-20-digits"),
    ],
)
def test_invalid_amount_never_reaches_a_payout(amount: str, currency: str) -> None:
    rows = [
        b.earning(amount="100.00"),
        b.earning(earning_id="ERN-0002", amount=amount, currency=currency),
    ]
    result = b.run(earnings=rows)
    row = b.payout(result)
    assert (row["earnings_count"], row["earned_amount"], row["payable_amount"]) == (
        1,
        D("100.00"),
        D("100.00"),
    )
    bad = result.exceptions.filter(pl.col("source") == "earnings").row(0, named=True)
    assert (bad["code"], bad["value"], bad["amount"], bad["currency"]) == (
        Code.INVALID_AMOUNT.value,
        amount,
        None,
        None,
    )
    assert result.reconciliation.holds
    assert [c.input_amount for c in result.reconciliation.per_currency] == ["100.00"]


def test_each_currency_in_one_file_allows_its_own_decimals() -> None:
    """The decimals an amount may have are those of its own row's currency, whichever other
    currencies the file holds; an unknown or missing currency and an amount out of form are
    reported once, by their own checks."""
    rows = [
        ("1500", "JPY", []),
        ("1500.5", "JPY", [(Code.INVALID_AMOUNT, "amount", "1500.5")]),
        ("12.34", "USD", []),
        ("12.345", "USD", [(Code.INVALID_AMOUNT, "amount", "12.345")]),
        ("12.3", "EUR", []),
        ("1.000", "KWD", [(Code.UNKNOWN_CURRENCY, "currency", "KWD")]),
        ("1.000", None, [(Code.MISSING_VALUE, "currency", None)]),
        ("1.2.345", "USD", [(Code.INVALID_VALUE, "amount", "1.2.345")]),
        ("5.", "KRW", []),
        (".5", "KRW", [(Code.INVALID_AMOUNT, "amount", ".5")]),
    ]
    text = b.text_frame(
        EARNINGS,
        [
            b.earning(earning_id=f"E-{n}", amount=amount, currency=currency)
            for n, (amount, currency, _) in enumerate(rows)
        ],
    )
    found = validate_text(text, INPUTS[EARNINGS], b.settings())
    assert found.sort("row_number").select("row_number", "code", "column", "value").rows() == [
        (n + 1, code.value, column, value)
        for n, (_, _, problems) in enumerate(rows)
        for code, column, value in problems
    ]


def test_invalid_limit_amount_is_not_truncated_into_a_limit() -> None:
    result = b.run(limits=[b.limit(limit_amount="10000.005")])
    assert b.problems(result, LIMITS) == [
        ("plan_limits", 1, "INVALID_AMOUNT", "limit_amount", "10000.005")
    ]
    row = b.payout(result)
    assert (row["limit_amount"], row["reason"]) == (None, "NO_LIMIT")


# --- Keys: DUPLICATE_KEY, DUPLICATE_PLAN, UNKNOWN_REFERENCE, INCONSISTENT_DATES ---------------

KEY_CASES = [
    pytest.param(PROGRAMS, [b.program(), b.program(period_start="2025-07-02")],
                 [(1, "Azure Co-op", "DUPLICATE_KEY", None, None),
                  (2, "Azure Co-op", "DUPLICATE_KEY", None, None)],
                 id="DUPLICATE_KEY-programs-(program,period)"),
    pytest.param(PLANS, [b.plan(), b.other_plan(plan_id=b.PLAN_ID)],
                 [(1, b.PLAN_ID, "DUPLICATE_KEY", "plan_id", b.PLAN_ID),
                  (2, b.PLAN_ID, "DUPLICATE_KEY", "plan_id", b.PLAN_ID)],
                 id="DUPLICATE_KEY-plans.plan_id"),
    pytest.param(LIMITS,
                 [b.limit(), b.limit(effective_month="2025-09"), b.limit(limit_amount="6500.00")],
                 [(1, b.PLAN_ID, "DUPLICATE_KEY", None, None),
                  (3, b.PLAN_ID, "DUPLICATE_KEY", None, None)],
                 id="DUPLICATE_KEY-plan_limits-(plan_id,effective_month)"),
    pytest.param(EARNINGS, [b.earning(), b.earning(amount="1957.00"), b.earning(earning_id="E2")],
                 [(1, "ERN-0001", "DUPLICATE_KEY", "earning_id", "ERN-0001"),
                  (2, "ERN-0001", "DUPLICATE_KEY", "earning_id", "ERN-0001")],
                 id="DUPLICATE_KEY-earnings.earning_id"),
    pytest.param(CAMPAIGNS, [b.campaign(), b.campaign(name="Other")],
                 [(1, "CMP-1001", "DUPLICATE_KEY", "campaign_id", "CMP-1001"),
                  (2, "CMP-1001", "DUPLICATE_KEY", "campaign_id", "CMP-1001")],
                 id="DUPLICATE_KEY-campaigns.campaign_id"),
    pytest.param(ACTIVITIES, [b.activity(), b.activity(countries="DE")],
                 [(1, "ACT-5001", "DUPLICATE_KEY", "activity_id", "ACT-5001"),
                  (2, "ACT-5001", "DUPLICATE_KEY", "activity_id", "ACT-5001")],
                 id="DUPLICATE_KEY-activities.activity_id"),
    pytest.param(PLANS, [b.plan(), b.plan(plan_id="CP26-0002", market="Canada")],
                 [(1, b.PLAN_ID, "DUPLICATE_PLAN", None, None),
                  (2, "CP26-0002", "DUPLICATE_PLAN", None, None)],
                 id="DUPLICATE_PLAN-plans-sharing-(mpn_id,fund,program,period)"),
    pytest.param(PLANS, [b.plan(), b.other_plan(period="FY27")],
                 [(2, "CP26-0002", "UNKNOWN_REFERENCE", "period", "FY27")],
                 id="UNKNOWN_REFERENCE-plans-(program,period)-not-in-programs"),
    pytest.param(LIMITS, [b.limit(), b.limit(plan_id="CP26-0999")],
                 [(2, "CP26-0999", "UNKNOWN_REFERENCE", "plan_id", "CP26-0999")],
                 id="UNKNOWN_REFERENCE-plan_limits.plan_id"),
    pytest.param(CAMPAIGNS, [b.campaign(), b.campaign(campaign_id="CMP-1046", plan_id="CP26-0998")],
                 [(2, "CMP-1046", "UNKNOWN_REFERENCE", "plan_id", "CP26-0998")],
                 id="UNKNOWN_REFERENCE-campaigns.plan_id"),
    pytest.param(ACTIVITIES,
                 [b.activity(), b.activity(activity_id="ACT-5063", campaign_id="CMP-1999")],
                 [(2, "ACT-5063", "UNKNOWN_REFERENCE", "campaign_id", "CMP-1999")],
                 id="UNKNOWN_REFERENCE-activities.campaign_id"),
    pytest.param(PROGRAMS,
                 [b.program(), b.program(program="Security Co-op", period_start="2025-06-30",
                                         period_end="2024-07-01")],
                 [(2, "Security Co-op", "INCONSISTENT_DATES", "period_end", "2024-07-01")],
                 id="INCONSISTENT_DATES-programs-period_end-before-period_start"),
    pytest.param(PROGRAMS, [b.program(), b.fy25(period_end="2025-09-30")],
                 [(1, "Azure Co-op", "INCONSISTENT_DATES", "period_start", "2025-07-01"),
                  (2, "Azure Co-op", "INCONSISTENT_DATES", "period_start", "2024-07-01")],
                 id="INCONSISTENT_DATES-programs-overlapping-periods"),
    pytest.param(PLANS, [b.plan(), b.other_plan(first_submitted_on="2025-10-14",
                                                last_submitted_on="2025-09-30")],
                 [(2, "CP26-0002", "INCONSISTENT_DATES", "last_submitted_on", "2025-09-30")],
                 id="INCONSISTENT_DATES-plans-last_submitted_on-before-first_submitted_on"),
]  # fmt: skip


@pytest.mark.parametrize(("dataset", "rows", "expected"), KEY_CASES)
def test_key_exception(dataset: Dataset, rows: list[b.Row], expected: list[tuple]) -> None:
    result = run_with_rows(dataset, rows)
    found = result.exceptions.filter(pl.col("source") == dataset.value)
    assert (
        sorted(found.select("row_number", "record_key", "code", "column", "value").rows())
        == expected
    )


def test_duplicate_key_rows_take_no_part() -> None:
    rows = [b.earning(amount="1687.00"), b.earning(amount="1957.00"), b.earning(earning_id="E3")]
    result = b.run(earnings=rows)
    row = b.payout(result)
    assert (row["earnings_count"], row["earned_amount"]) == (1, D("100.00"))
    duplicates = result.exceptions.filter(pl.col("code") == "DUPLICATE_KEY")
    assert duplicates.select("amount", "currency").rows() == [
        (D("1687.00"), "USD"),
        (D("1957.00"), "USD"),
    ]


def test_earnings_of_other_months_are_not_reported() -> None:
    rows = [b.earning(), b.earning(earning_id="ERN-MAR", earning_month="2026-03", amount="NaN")]
    assert b.problems(b.run(earnings=rows), EARNINGS) == []


def test_other_files_are_reported_in_every_month() -> None:
    result = b.run(
        plans=[b.plan(), b.other_plan(status="Pending approval")],
        limits=[b.limit(), b.limit(plan_id="CP26-0999")],
        earnings=[],
    )
    assert b.problems(result) == [
        ("plan_limits", 2, "UNKNOWN_REFERENCE", "plan_id", "CP26-0999"),
        ("plans", 2, "INVALID_VALUE", "status", "Pending approval"),
    ]
    assert result.payouts.is_empty()


# --- payment_profiles -----------------------------------------------------------------------------

ACTION = {"profile_status": "Action required", "action_required_since": "2026-01-15"}
PROFILE_CASES = [
    ("valid-Enrolled", b.payment_profile(), []),
    ("valid-Action-required-with-its-date", b.payment_profile(mpn_id="1093384", **ACTION), []),
    ("valid-Enrolled-with-a-date", b.payment_profile(mpn_id="8100456",
                                                      action_required_since="2025-12-01"), []),
    *((f"INVALID_VALUE-mpn_id-{v}", b.payment_profile(mpn_id=v),
       [(Code.INVALID_VALUE, "mpn_id", v)]) for v in DIGITS),
    *((f"INVALID_VALUE-profile_status-{v}", b.payment_profile(mpn_id="2000001", profile_status=v),
       [(Code.INVALID_VALUE, "profile_status", v)])
      for v in ["enrolled", "Action Required", "Suspended", "Enrolled "]),
    *((f"INVALID_VALUE-action_required_since-{v}",
       b.payment_profile(mpn_id="2000002", **(ACTION | {"action_required_since": v})),
       [(Code.INVALID_VALUE, "action_required_since", v)]) for v in DATES),
    ("MISSING_VALUE-mpn_id", b.payment_profile(mpn_id=None),
     [(Code.MISSING_VALUE, "mpn_id", None)]),
    ("MISSING_VALUE-profile_status", b.payment_profile(mpn_id="2000003", profile_status=None),
     [(Code.MISSING_VALUE, "profile_status", None)]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "expected"), [pytest.param(row, exp, id=name) for name, row, exp in PROFILE_CASES]
)
def test_payment_profile_row(row: b.Row, expected: list[tuple]) -> None:
    first = b.payment_profile(mpn_id="9999999")
    frame = b.text_frame(PROFILES, [first, row])
    found = validate_text(frame, INPUTS[PROFILES], b.settings())
    assert found.select("source", "row_number", "code", "column", "value").rows() == [
        (PROFILES.value, 2, code.value, column, value) for code, column, value in expected
    ]
    assert found.get_column("record_key").to_list() == [row["mpn_id"]] * len(expected)
    assert all(message for message in found.get_column("message"))


def test_payment_profile_status_message_names_the_allowed_values() -> None:
    frame = b.text_frame(PROFILES, [b.payment_profile(profile_status="Suspended")])
    message = validate_text(frame, INPUTS[PROFILES], b.settings()).item(0, "message")
    assert message == "profile_status 'Suspended' is not Enrolled or Action required"


def test_payment_profiles_spec_keys_on_mpn_id() -> None:
    spec = INPUTS[PROFILES]
    assert (spec.record_key, spec.unique_keys) == ("mpn_id", (("mpn_id",),))
    assert spec.columns == ("mpn_id", "profile_status", "action_required_since")


SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.mark.parametrize("dataset", list(Dataset), ids=lambda d: d.value)
def test_the_one_pass_screen_flags_every_row_pandera_fails(dataset: Dataset) -> None:
    """validate_text gives pandera only the rows `passes` flags: over the sample's messy rows,
    every row pandera fails on the whole frame is flagged, and the exceptions are the same."""
    spec = INPUTS[dataset]
    settings = b.settings()
    if dataset == PROFILES:  # more bad rows here than the sample has: those of this file
        text = b.text_frame(PROFILES, [row for _, row, _ in PROFILE_CASES])
    else:
        text, _ = read_text(InputFile(dataset, SAMPLE / f"{dataset.value}.csv"))
    schema = schema_for(spec, settings)
    whole = empty_exceptions()
    failing: set[int] = set()
    try:
        schema.validate(text, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failing = set(errors.failure_cases.get_column("index").drop_nulls().to_list())
        whole = failure_exceptions(errors.failure_cases, text, spec, settings)
    flagged = set((~passes(text, schema)).arg_true().to_list())
    assert failing <= flagged
    key = ["row_number", "code", "column"]
    assert validate_text(text, spec, settings).sort(key).equals(whole.sort(key))


def _many_bad_values(column: str, bad: int) -> list[b.Row]:
    """Earnings rows, good and bad alike, whose `column` holds `bad` distinct failing values
    (and a null, and good values between them)."""
    failing = {
        "earning_month": [f"2026-{13 + n:02d}" for n in range(bad)],
        "currency": [f"Q{n:02d}" for n in range(bad)],
        "program": [f"P\u200b{n}" for n in range(bad)],
        "fund": [f"F\u200b{n}" for n in range(bad)],
    }[column]
    values = [*failing, None, b.earning()[column], *failing[:2]]
    return [b.earning(earning_id=f"E-{n}", **{column: v}) for n, v in enumerate(values)]


@pytest.mark.parametrize("bad", [0, 1, 3, inputs.FEW_BAD_VALUES, inputs.FEW_BAD_VALUES + 5])
@pytest.mark.parametrize("column", INPUTS[EARNINGS].few_valued)
def test_few_valued_columns_screen_as_every_row_checked(column: str, bad: int) -> None:
    """A few-valued column's values are judged once each, and its rows compared with the
    failing ones (one by one when they are few, in one lookup when many): the screen agrees
    with the same checks run on every row."""
    spec = INPUTS[EARNINGS]
    schema = schema_for(spec, b.settings())
    text = b.text_frame(EARNINGS, [b.earning(earning_id="E-first"), *_many_bad_values(column, bad)])
    by_value = passes(text, schema, spec.few_valued)
    assert by_value.to_list() == passes(text, schema).to_list()
    assert by_value.to_list()[1 : bad + 2] == [False] * (bad + 1)  # the failing values, null


# --- Invisible and control characters: INVALID_VALUE, so a resent id cannot pass for new ----


def _inside(text: str, char: str) -> str:
    """`text` with `char` in its middle (a value's edges are trimmed when it is read)."""
    middle = len(text) // 2
    return text[:middle] + char + text[middle:]


def hidden(dataset: Dataset, column: str, char: str, name: str):
    """Row 2 of `dataset` with `char` inside its `column`: INVALID_VALUE naming the code point."""
    valid = FIRST_AND_SECOND[dataset][1][column]
    code_point = f"U+{ord(char):04X}"
    message = (
        f"{column} '{_inside(valid, f'<{code_point}>')}' holds an invisible or control "
        f"character ({code_point}); retype the value"
    )
    return pytest.param(
        dataset,
        column,
        _inside(valid, char),
        message,
        id=f"INVALID_VALUE-{dataset.value}.{column}-{name}",
    )


HIDDEN_CASES = [
    hidden(EARNINGS, "earning_id", "\u200b", "zero-width-space"),
    hidden(EARNINGS, "earning_id", "\u200d", "zero-width-joiner"),
    hidden(EARNINGS, "earning_id", "\u202e", "right-to-left-override"),
    hidden(EARNINGS, "earning_id", "\ufeff", "BOM-mid-value"),
    hidden(EARNINGS, "earning_id", "\x00", "NUL"),
    hidden(EARNINGS, "earning_id", "\x07", "BEL"),
    hidden(EARNINGS, "earning_id", "\t", "tab"),
    hidden(EARNINGS, "earning_id", "\n", "line-feed"),
    hidden(EARNINGS, "earning_id", "\x85", "next-line-C1-control"),
    hidden(EARNINGS, "program", "\u2060", "word-joiner"),
    hidden(EARNINGS, "fund", "\u00ad", "soft-hyphen"),
    hidden(EARNINGS, "mpn_id", "\u200b", "zero-width-space"),
    hidden(EARNINGS, "earning_month", "\u200b", "zero-width-space"),
    hidden(EARNINGS, "amount", "\x00", "NUL"),
    hidden(EARNINGS, "currency", "\u200c", "zero-width-non-joiner"),
    hidden(PLANS, "plan_id", "\u2066", "left-to-right-isolate"),
    hidden(PLANS, "reviewer_email", "\ufeff", "BOM-mid-value"),
    hidden(PLANS, "reviewer_email", "\x1b", "escape"),
    hidden(PLANS, "status", "\u200b", "zero-width-space"),
    hidden(PLANS, "created_on", "\u200e", "left-to-right-mark"),
    hidden(PLANS, "market", "\u200b", "zero-width-space-in-free-text"),
    hidden(PLANS, "market", "\x07", "BEL-in-free-text"),
    hidden(PROGRAMS, "period", "\u200b", "zero-width-space"),
    hidden(LIMITS, "limit_amount", "\u200b", "zero-width-space"),
    hidden(CAMPAIGNS, "campaign_id", "\u200b", "zero-width-space"),
    hidden(CAMPAIGNS, "name", "\u202e", "right-to-left-override-in-free-text"),
    hidden(ACTIVITIES, "activity_id", "\t", "tab"),
    hidden(ACTIVITIES, "countries", "\u200b", "zero-width-space"),
    hidden(ACTIVITIES, "name", "\ufeff", "BOM-in-free-text"),
]


def _screen_flags_row_2(dataset: Dataset, column: str, raw: str) -> bool:
    first, second = FIRST_AND_SECOND[dataset]
    text = b.text_frame(dataset, [first, second | {column: raw}])
    return (~passes(text, schema_for(INPUTS[dataset], b.settings()))).to_list() == [False, True]


@pytest.mark.parametrize(("dataset", "column", "raw", "message"), HIDDEN_CASES)
def test_a_hidden_character_is_invalid_value(
    dataset: Dataset, column: str, raw: str, message: str
) -> None:
    assert _screen_flags_row_2(dataset, column, raw)
    result = run_with_second(dataset, **{column: raw})
    found = result.exceptions.filter(
        (pl.col("source") == dataset.value) & (pl.col("column") == column)
    )
    assert found.select("row_number", "code", "value").rows() == [(2, "INVALID_VALUE", raw)]
    assert found.item(0, "message") == message


@pytest.mark.parametrize(
    ("dataset", "column", "char"),
    [
        pytest.param(PLANS, "market", "\t", id="free-text-plans.market-tab"),
        pytest.param(PLANS, "market", "\r\n", id="free-text-plans.market-CRLF"),
        pytest.param(CAMPAIGNS, "name", "\n", id="free-text-campaigns.name-line-feed"),
        pytest.param(ACTIVITIES, "name", "\n", id="free-text-activities.name-line-feed"),
        pytest.param(ACTIVITIES, "name", "\r", id="free-text-activities.name-CR"),
        pytest.param(EARNINGS, "earning_id", "\u00a0", id="no-break-space-is-visible-space"),
        pytest.param(PLANS, "market", "é", id="letters-of-any-script"),
    ],
)
def test_free_text_may_hold_tab_cr_and_lf(dataset: Dataset, column: str, char: str) -> None:
    raw = _inside(FIRST_AND_SECOND[dataset][1][column], char)
    assert not _screen_flags_row_2(dataset, column, raw)
    assert b.problems(run_with_second(dataset, **{column: raw}), dataset) == []


@pytest.mark.parametrize(
    "dataset", [PROGRAMS, PLANS, LIMITS, EARNINGS, CAMPAIGNS, ACTIVITIES], ids=lambda d: d.value
)
def test_every_column_refuses_a_zero_width_space(dataset: Dataset) -> None:
    """Whatever its kind, every column of every input refuses a hidden character: a column
    added later cannot forget it."""
    for column in INPUTS[dataset].columns:
        raw = _inside(FIRST_AND_SECOND[dataset][1][column] or "x", "\u200b")
        assert _screen_flags_row_2(dataset, column, raw), column
        found = run_with_second(dataset, **{column: raw}).exceptions.filter(
            (pl.col("source") == dataset.value) & (pl.col("column") == column)
        )
        assert found.select("code").to_series().to_list() == ["INVALID_VALUE"], column
        assert "(U+200B)" in found.item(0, "message"), column


def test_one_exception_per_cell_when_a_hidden_character_also_breaks_the_form() -> None:
    # A space fails the email form and the zero-width space the visible-text check.
    raw = "megan bowen\u200b@example.com"
    result = run_with_second(PLANS, reviewer_email=raw)
    found = result.exceptions.filter(pl.col("column") == "reviewer_email")
    assert found.select("row_number", "code").rows() == [(2, "INVALID_VALUE")]
    assert "(U+200B)" in found.item(0, "message")


@pytest.mark.parametrize(
    ("form", "valid"),
    [
        ("DIGITS_6_10", "4412907"),
        ("DATE_FORM", "2026-04-30"),
        ("MONTH_FORM", "2026-04"),
        ("AMOUNT_FORM", "100.00"),
        ("CURRENCY_FORM", "USD"),
        ("EMAIL_FORM", "megan@example.com"),
        ("COUNTRIES_FORM", "US;CA"),
    ],
)
@pytest.mark.parametrize(
    "around",
    [
        pytest.param("{}\n", id="trailing-LF"),
        pytest.param("{}\r\n", id="trailing-CRLF"),
        pytest.param("\n{}", id="leading-LF"),
        pytest.param("{}\nX", id="second-line"),
    ],
)
def test_a_form_matches_the_whole_value_and_no_line_of_it(
    form: str, valid: str, around: str
) -> None:
    """polars' `$` (Rust regex) is the end of the text, not of a line: a value that reaches the
    schema untrimmed with a line break does not pass for its first line."""
    pattern = getattr(inputs, form)
    values = pl.Series([valid, around.format(valid)])
    assert values.str.contains(pattern).to_list() == [True, False]


@pytest.mark.parametrize("dataset", list(Dataset), ids=lambda d: d.value)
def test_the_compiled_checks_fail_exactly_the_rows_pandera_fails(dataset: Dataset) -> None:
    """The screen is the schema's own checks as expressions (`compile_checks`): over the
    sample's messy rows it fails exactly the rows pandera fails, no more, so a row it passes
    can be routed without pandera seeing it."""
    spec = INPUTS[dataset]
    if dataset == PROFILES:
        text = b.text_frame(PROFILES, [row for _, row, _ in PROFILE_CASES])
    else:
        text, _ = read_text(InputFile(dataset, SAMPLE / f"{dataset.value}.csv"))
    schema = schema_for(spec, b.settings())
    failing: set[int] = set()
    try:
        schema.validate(text, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failing = set(errors.failure_cases.get_column("index").drop_nulls().to_list())
    assert set((~passes(text, schema)).arg_true().to_list()) == failing
    assert set((~passes(text, schema, spec.few_valued)).arg_true().to_list()) == failing


def test_a_check_without_an_expression_is_refused_by_the_screen() -> None:
    """No check of a schema can pass unscreened: one the screen cannot compile is an error."""
    schema = schema_for(INPUTS[EARNINGS], b.settings())
    odd = pa.Check(lambda data: data.lazyframe.select(pl.lit(True)), name="odd")
    schema = schema.update_column("fund", checks=[*schema.columns["fund"].checks, odd])
    with pytest.raises(ValueError, match="odd"):
        inputs.compile_checks(schema)
