"""Hostile values (docs/inputs.md, "Hostile input"): every bad amount, date or month is an exception
with a code and a sentence, never a crash and never a changed value; typed Parquet reads to the same
values as CSV text.

Decisions pinned here (docs/inputs.md lists them):
- `-0`, `+5`, `.5` and `5.` are plain decimal text (an optional sign, digits, an optional point
  and fraction): they read as 0.00, 5.00, 0.50 and 5.00;
- CSV text is judged as written: `12.340` (USD) and `1500.0` (JPY) have more decimals than the
  currency allows and are INVALID_AMOUNT, though no digit would be lost;
- a typed Parquet number is read as its shortest exact text: float 5000.0 and Decimal 5000.00
  read as `5000`, so float and decimal columns hold JPY amounts; float 12.345 stays `12.345`.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coop_rules.vocabulary import Code, Dataset
from flows.errors import InputRejected, RunError
from schemas.inputs import INPUTS
from tests.flows.messy_inputs import (
    LIMITS,
    PLAN_JPY,
    PLAN_USD,
    PROGRAM,
    Published,
    copy_sample,
    csv_text,
    earning,
    minimal_files,
    nothing_published,
    run,
    write_folder,
)

INVALID_VALUE = Code.INVALID_VALUE.value
INVALID_AMOUNT = Code.INVALID_AMOUNT.value
MISSING_VALUE = Code.MISSING_VALUE.value
INCONSISTENT_DATES = Code.INCONSISTENT_DATES.value


def _run_with(tmp_path: Path, **files: str) -> Published:
    contents: dict[str, str | bytes] = {**minimal_files(), **files}
    return run(write_folder(tmp_path / "in", contents), tmp_path / "out")


def _only_good_row_paid(published: Published, currency: str = "USD") -> None:
    """The good row E-1 (1000.00 USD) is paid, the bad row E-2 takes no part."""
    assert published.reconciliation.holds
    assert published.payouts.select("earnings_count", "earned_amount", "currency").rows() == [
        (1, Decimal("1000.00"), "USD")
    ]


# (amount text, currency, code): each is an exception on column `amount`, with no amount
AMOUNT_CASES = [
    pytest.param("NaN", "USD", INVALID_VALUE, id="INVALID_VALUE-nan"),
    pytest.param("nan", "USD", INVALID_VALUE, id="INVALID_VALUE-lowercase-nan"),
    pytest.param("Infinity", "USD", INVALID_VALUE, id="INVALID_VALUE-infinity"),
    pytest.param("-Infinity", "USD", INVALID_VALUE, id="INVALID_VALUE-minus-infinity"),
    pytest.param("inf", "USD", INVALID_VALUE, id="INVALID_VALUE-inf"),
    pytest.param("1e3", "USD", INVALID_VALUE, id="INVALID_VALUE-exponent"),
    pytest.param("1E3", "USD", INVALID_VALUE, id="INVALID_VALUE-capital-exponent"),
    pytest.param("1,000.00", "USD", INVALID_VALUE, id="INVALID_VALUE-thousands-comma"),
    pytest.param("1 000.00", "USD", INVALID_VALUE, id="INVALID_VALUE-thousands-space"),
    pytest.param("1_000", "USD", INVALID_VALUE, id="INVALID_VALUE-underscore"),
    pytest.param("1.000,00", "EUR", INVALID_VALUE, id="INVALID_VALUE-decimal-comma"),
    pytest.param("$5", "USD", INVALID_VALUE, id="INVALID_VALUE-dollar-sign"),
    pytest.param("€5", "EUR", INVALID_VALUE, id="INVALID_VALUE-euro-sign"),
    pytest.param("5 USD", "USD", INVALID_VALUE, id="INVALID_VALUE-currency-code-suffix"),
    pytest.param("(5.00)", "USD", INVALID_VALUE, id="INVALID_VALUE-accounting-negative"),
    pytest.param("5-", "USD", INVALID_VALUE, id="INVALID_VALUE-trailing-minus"),
    pytest.param("--5", "USD", INVALID_VALUE, id="INVALID_VALUE-double-sign"),
    pytest.param("0x10", "USD", INVALID_VALUE, id="INVALID_VALUE-hexadecimal"),
    pytest.param("٥", "USD", INVALID_VALUE, id="INVALID_VALUE-arabic-indic-digit"),
    pytest.param(".", "USD", INVALID_VALUE, id="INVALID_VALUE-lone-point"),
    pytest.param("-", "USD", INVALID_VALUE, id="INVALID_VALUE-lone-sign"),
    pytest.param("5.00.00", "USD", INVALID_VALUE, id="INVALID_VALUE-two-points"),
    pytest.param("12345678901234567890", "USD", INVALID_AMOUNT, id="INVALID_AMOUNT-20-digits"),
    pytest.param(
        "-12345678901234567.00", "USD", INVALID_AMOUNT, id="INVALID_AMOUNT-17-digits-negative"
    ),
    pytest.param("12.345", "USD", INVALID_AMOUNT, id="INVALID_AMOUNT-three-decimals-usd"),
    pytest.param("12.340", "USD", INVALID_AMOUNT, id="INVALID_AMOUNT-written-decimals-count"),
    pytest.param("1500.5", "JPY", INVALID_AMOUNT, id="INVALID_AMOUNT-decimal-for-jpy"),
    pytest.param("1500.0", "JPY", INVALID_AMOUNT, id="INVALID_AMOUNT-zero-decimal-for-jpy"),
]


@pytest.mark.parametrize(("amount", "currency", "code"), AMOUNT_CASES)
def test_bad_amount_is_an_exception_never_a_changed_value(
    tmp_path: Path, amount: str, currency: str, code: str
) -> None:
    bad = earning("E-2", amount, currency=currency, mpn_id=PLAN_USD[1])
    published = _run_with(
        tmp_path, **{"earnings.csv": csv_text(Dataset.EARNINGS, [earning(), bad])}
    )

    found = published.exceptions_of("earnings")
    assert found.select("row_number", "record_key", "code", "column", "value").rows() == [
        (2, "E-2", code, "amount", amount)
    ]
    assert amount in found.item(0, "message")
    # The amount did not parse or fit: it is not reported as a number, nor summed anywhere.
    assert found.item(0, "amount") is None
    _only_good_row_paid(published)


# (amount text, the amount it reads as): plain decimal text (docs/inputs.md, "Amounts and
# currencies")
PLAIN_DECIMAL_CASES = [
    pytest.param("-0", "0.00", id="minus-zero"),
    pytest.param("+5", "5.00", id="plus-sign"),
    pytest.param(".5", "0.50", id="no-digit-before-the-point"),
    pytest.param("5.", "5.00", id="no-digit-after-the-point"),
    pytest.param("-.5", "-0.50", id="negative-no-digit-before-the-point"),
    pytest.param("007.10", "7.10", id="leading-zeros"),
    pytest.param("0000000000000000000001.00", "1.00", id="many-leading-zeros-are-not-digits"),
    pytest.param("9999999999999999.99", "9999999999999999.99", id="largest-decimal-18-2"),
    pytest.param(" 100.00 ", "100.00", id="stray-spaces-trimmed"),
]


@pytest.mark.parametrize(("amount", "expected"), PLAIN_DECIMAL_CASES)
def test_plain_decimal_text_parses_exactly(tmp_path: Path, amount: str, expected: str) -> None:
    published = _run_with(
        tmp_path, **{"earnings.csv": csv_text(Dataset.EARNINGS, [earning(amount=amount)])}
    )
    assert published.exceptions_of("earnings").is_empty()
    assert published.payouts.get_column("earned_amount").to_list() == [Decimal(expected)]
    assert published.reconciliation.holds


def test_sum_beyond_decimal_18_2_stops_the_run_and_publishes_nothing(tmp_path: Path) -> None:
    """Each amount fits Decimal(18, 2), their sum does not: the run ends with a plain error
    (exit 1), never a wrapped or rounded total."""
    largest = "9999999999999999.99"
    files = minimal_files([earning("E-1", largest), earning("E-2", largest)])
    output = tmp_path / "out"
    with pytest.raises(RunError) as raised:
        run(write_folder(tmp_path / "in", files), output)
    assert raised.value.exit_code == 1
    assert "Decimal(18, 2)" in str(raised.value)
    assert nothing_published(output)


def test_jpy_amount_without_decimals_reads_as_whole_yen(tmp_path: Path) -> None:
    published = _run_with(
        tmp_path,
        **{"earnings.csv": csv_text(Dataset.EARNINGS, [earning(amount="1100000", currency="JPY")])},
    )
    assert published.payouts.select("plan_id", "earned_amount").rows() == [
        ("PL-2", Decimal("1100000.00"))
    ]


# (limit text, code, words of the message): a limit with an exception takes no part (NO_LIMIT)
LIMIT_CASES = [
    pytest.param("-500.00", INVALID_VALUE, "negative", id="INVALID_VALUE-negative-limit"),
    pytest.param("-abc", INVALID_VALUE, "plain decimal", id="INVALID_VALUE-reported-once"),
    pytest.param("1,000.00", INVALID_VALUE, "plain decimal", id="INVALID_VALUE-thousands"),
    pytest.param("NaN", INVALID_VALUE, "plain decimal", id="INVALID_VALUE-nan-limit"),
    pytest.param("12.345", INVALID_AMOUNT, "never rounded", id="INVALID_AMOUNT-three-decimals"),
    pytest.param("12345678901234567890", INVALID_AMOUNT, "range", id="INVALID_AMOUNT-20-digits"),
]


@pytest.mark.parametrize(("limit", "code", "words"), LIMIT_CASES)
def test_bad_limit_amount_is_one_exception_and_the_plan_has_no_limit(
    tmp_path: Path, limit: str, code: str, words: str
) -> None:
    limits = csv_text(Dataset.PLAN_LIMITS, [("PL-1", "2025-07", limit), LIMITS[1]])
    published = _run_with(tmp_path, **{"plan_limits.csv": limits})

    found = published.exceptions_of("plan_limits")
    assert found.select("row_number", "record_key", "code", "column", "value").rows() == [
        (1, "PL-1", code, "limit_amount", limit)
    ]
    assert words in found.item(0, "message")
    assert published.payouts.select("outcome", "reason", "limit_amount").rows() == [
        ("HELD", "NO_LIMIT", None)
    ]


@pytest.mark.parametrize(
    ("limit", "expected", "payable"),
    [
        pytest.param("-0", "0.00", "0.00", id="minus-zero-is-a-zero-limit"),
        pytest.param("-0.00", "0.00", "0.00", id="minus-zero-with-decimals"),
        pytest.param("+5000", "5000.00", "1000.00", id="plus-sign"),
        pytest.param("500.5", "500.50", "500.50", id="one-decimal-caps"),
    ],
)
def test_plain_decimal_limit_parses_exactly(
    tmp_path: Path, limit: str, expected: str, payable: str
) -> None:
    limits = csv_text(Dataset.PLAN_LIMITS, [("PL-1", "2025-07", limit), LIMITS[1]])
    published = _run_with(tmp_path, **{"plan_limits.csv": limits})
    assert published.exceptions.is_empty()
    assert published.payouts.select("outcome", "limit_amount", "payable_amount").rows() == [
        ("PAY", Decimal(expected), Decimal(payable))
    ]


# ---------------------------------------------------------------------------------------------
# Dates and months


# (earning_month text, code): the row's month is unreadable, so every run reports it
EARNING_MONTH_CASES = [
    pytest.param("2026-13", INVALID_VALUE, id="INVALID_VALUE-month-13"),
    pytest.param("2026-00", INVALID_VALUE, id="INVALID_VALUE-month-00"),
    pytest.param("26-04", INVALID_VALUE, id="INVALID_VALUE-two-digit-year"),
    pytest.param("2026-4", INVALID_VALUE, id="INVALID_VALUE-one-digit-month"),
    pytest.param("2026-04-01", INVALID_VALUE, id="INVALID_VALUE-a-date-not-a-month"),
    pytest.param("2026-02-30", INVALID_VALUE, id="INVALID_VALUE-impossible-date"),
    pytest.param("April 2026", INVALID_VALUE, id="INVALID_VALUE-month-name"),
    pytest.param("", MISSING_VALUE, id="MISSING_VALUE-empty-month"),
    pytest.param("２０２６-04", INVALID_VALUE, id="INVALID_VALUE-fullwidth-digits"),
    pytest.param("2026-04\u200b", INVALID_VALUE, id="INVALID_VALUE-zero-width-space"),
    pytest.param("2026-04\nX", INVALID_VALUE, id="INVALID_VALUE-a-second-line"),
]


@pytest.mark.parametrize("run_month_", ["2026-04", "2026-05"])
@pytest.mark.parametrize(("month", "code"), EARNING_MONTH_CASES)
def test_unreadable_earning_month_is_reported_in_every_run(
    tmp_path: Path, month: str, code: str, run_month_: str
) -> None:
    bad = earning("E-2", "250.00", month=month)
    files = minimal_files([earning(), bad])
    # May has no earnings of its own: only --allow-empty publishes it.
    published = run(
        write_folder(tmp_path / "in", files),
        tmp_path / "out",
        month=run_month_,
        allow_empty=run_month_ == "2026-05",
    )

    found = published.exceptions_of("earnings")
    assert found.select("row_number", "record_key", "code", "column", "value").rows() == [
        (2, "E-2", code, "earning_month", month or None)
    ]
    assert found.item(0, "message")
    # The amount itself is fine, so the exception carries it and reconciliation counts it.
    assert (found.item(0, "amount"), found.item(0, "currency")) == (Decimal("250.00"), "USD")
    assert published.reconciliation.holds
    assert published.reconciliation.exception_rows == 1


def _plan(**dates: str) -> tuple[str, ...]:
    columns = INPUTS[Dataset.PLANS].columns
    values = dict(zip(columns, PLAN_USD, strict=True))
    return tuple({**values, **dates}[c] for c in columns)


# (plan changes, plan exception (code, column, value, message))
PLAN_DATE_CASES = [
    pytest.param(
        {"created_on": "2026-02-30"},
        (
            INVALID_VALUE,
            "created_on",
            "2026-02-30",
            "created_on '2026-02-30' is not a real calendar date YYYY-MM-DD",
        ),
        id="INVALID_VALUE-created-on-february-30",
    ),
    pytest.param(
        {"first_submitted_on": "2025-13-01"},
        (
            INVALID_VALUE,
            "first_submitted_on",
            "2025-13-01",
            "first_submitted_on '2025-13-01' is not a real calendar date YYYY-MM-DD",
        ),
        id="INVALID_VALUE-first-submitted-month-13",
    ),
    pytest.param(
        {"last_submitted_on": "21/07/2025"},
        (
            INVALID_VALUE,
            "last_submitted_on",
            "21/07/2025",
            "last_submitted_on '21/07/2025' is not a real calendar date YYYY-MM-DD",
        ),
        id="INVALID_VALUE-day-first-date",
    ),
    pytest.param(
        {"first_submitted_on": "2025-07-21", "last_submitted_on": "2025-07-20"},
        (
            INCONSISTENT_DATES,
            "last_submitted_on",
            "2025-07-20",
            "last_submitted_on 2025-07-20 is before first_submitted_on 2025-07-21",
        ),
        id="INCONSISTENT_DATES-last-submitted-before-first",
    ),
    pytest.param(
        {"created_on": "2025-07-14", "first_submitted_on": "2025-07-13"},
        (
            INCONSISTENT_DATES,
            "first_submitted_on",
            "2025-07-13",
            "first_submitted_on 2025-07-13 is before created_on 2025-07-14",
        ),
        id="INCONSISTENT_DATES-first-submitted-before-created",
    ),
    pytest.param(
        {"status": "Editing", "first_submitted_on": "", "last_submitted_on": "2025-07-21"},
        (
            INCONSISTENT_DATES,
            "last_submitted_on",
            "2025-07-21",
            "last_submitted_on 2025-07-21 is given but first_submitted_on is empty",
        ),
        id="INCONSISTENT_DATES-last-submitted-without-first",
    ),
    pytest.param(
        {"first_submitted_on": "", "last_submitted_on": ""},
        (
            MISSING_VALUE,
            "first_submitted_on",
            None,
            "first_submitted_on is empty but status 'Approved' means the plan was submitted",
        ),
        id="MISSING_VALUE-approved-never-submitted",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), PLAN_DATE_CASES)
def test_plan_dates_that_contradict_each_other(
    tmp_path: Path, changes: dict[str, str], expected: tuple[str, str, str | None, str]
) -> None:
    plans = csv_text(Dataset.PLANS, [_plan(**changes), PLAN_JPY])
    published = _run_with(tmp_path, **{"plans.csv": plans})

    found = published.exceptions_of("plans")
    assert found.select(
        "row_number", "record_key", "code", "column", "value", "message"
    ).rows() == [(1, "PL-1", *expected)]
    # The plan takes no part: its earnings are PLAN_INVALID, with their amount.
    earnings = published.exceptions_of("earnings")
    assert earnings.select("row_number", "code", "amount").rows() == [
        (1, Code.PLAN_INVALID.value, Decimal("1000.00"))
    ]
    assert published.payouts.is_empty()
    assert published.reconciliation.holds


# (program rows, expected program exceptions (row, code, column, message))
PROGRAM_CASES = [
    pytest.param(
        [PROGRAM, ("Azure Co-op", "FY27", "2026-06-01", "2027-05-31")],
        [
            (
                1,
                INCONSISTENT_DATES,
                "period_start",
                "period FY26 of Azure Co-op overlaps period(s) FY27 of the same program",
            ),
            (
                2,
                INCONSISTENT_DATES,
                "period_start",
                "period FY27 of Azure Co-op overlaps period(s) FY26 of the same program",
            ),
        ],
        id="INCONSISTENT_DATES-overlapping-periods-both-rows",
    ),
    pytest.param(
        [("Azure Co-op", "FY27", "2026-06-30", "2027-06-29"), PROGRAM],
        [
            (
                1,
                INCONSISTENT_DATES,
                "period_start",
                "period FY27 of Azure Co-op overlaps period(s) FY26 of the same program",
            ),
            (
                2,
                INCONSISTENT_DATES,
                "period_start",
                "period FY26 of Azure Co-op overlaps period(s) FY27 of the same program",
            ),
        ],
        id="INCONSISTENT_DATES-periods-sharing-one-day",
    ),
    pytest.param(
        [("Azure Co-op", "FY26", "2026-06-30", "2025-07-01")],
        [
            (
                1,
                INCONSISTENT_DATES,
                "period_end",
                "period FY26 of Azure Co-op ends (2025-07-01) before it starts (2026-06-30)",
            ),
        ],
        id="INCONSISTENT_DATES-period-ends-before-it-starts",
    ),
    pytest.param(
        [("Azure Co-op", "FY26", "2025-07-01", "2026-02-30")],
        [
            (
                1,
                INVALID_VALUE,
                "period_end",
                "period_end '2026-02-30' is not a real calendar date YYYY-MM-DD",
            ),
        ],
        id="INVALID_VALUE-period-end-february-30",
    ),
    pytest.param(
        [("Azure Co-op", "FY26", "2025-7-1", "2026-06-30")],
        [
            (
                1,
                INVALID_VALUE,
                "period_start",
                "period_start '2025-7-1' is not a real calendar date YYYY-MM-DD",
            ),
        ],
        id="INVALID_VALUE-period-start-without-zero-padding",
    ),
]


@pytest.mark.parametrize(("programs", "expected"), PROGRAM_CASES)
def test_program_periods_that_contradict(
    tmp_path: Path, programs: list[tuple[str, ...]], expected: list[tuple[int, str, str, str]]
) -> None:
    published = _run_with(tmp_path, **{"programs.csv": csv_text(Dataset.PROGRAMS, programs)})

    found = published.exceptions_of("programs")
    assert found.select("row_number", "code", "column", "message").rows() == expected
    assert found.get_column("record_key").to_list() == ["Azure Co-op"] * len(expected)
    # No valid period holds April 1st: the month's earnings are NO_PROGRAM_PERIOD.
    earnings = published.exceptions_of("earnings")
    assert earnings.select("row_number", "code", "amount").rows() == [
        (1, Code.NO_PROGRAM_PERIOD.value, Decimal("1000.00"))
    ]
    assert published.reconciliation.holds


def test_adjacent_program_periods_do_not_overlap(tmp_path: Path) -> None:
    programs = [PROGRAM, ("Azure Co-op", "FY27", "2026-07-01", "2027-06-30")]
    published = _run_with(tmp_path, **{"programs.csv": csv_text(Dataset.PROGRAMS, programs)})
    assert published.exceptions_of("programs").is_empty()
    assert published.payouts.get_column("outcome").to_list() == ["PAY"]


@pytest.mark.parametrize(
    "month",
    [
        pytest.param("2026-13", id="INVALID_VALUE-effective-month-13"),
        pytest.param("26-04", id="INVALID_VALUE-effective-month-two-digit-year"),
    ],
)
def test_bad_effective_month_leaves_the_plan_without_a_limit(tmp_path: Path, month: str) -> None:
    limits = csv_text(Dataset.PLAN_LIMITS, [("PL-1", month, "10000.00"), LIMITS[1]])
    published = _run_with(tmp_path, **{"plan_limits.csv": limits})

    found = published.exceptions_of("plan_limits")
    assert found.select("row_number", "record_key", "code", "column", "value").rows() == [
        (1, "PL-1", INVALID_VALUE, "effective_month", month)
    ]
    assert published.payouts.select("plan_id", "outcome", "reason", "payable_amount").rows() == [
        ("PL-1", "HELD", "NO_LIMIT", Decimal("0.00"))
    ]


# ---------------------------------------------------------------------------------------------
# Typed Parquet inputs

DATE_COLUMNS = {
    Dataset.PROGRAMS: ("period_start", "period_end"),
    Dataset.PLANS: ("created_on", "first_submitted_on", "last_submitted_on"),
}
INTEGER_COLUMNS = {Dataset.PLANS: ("mpn_id",), Dataset.EARNINGS: ("mpn_id",)}
FLOAT_COLUMNS = {Dataset.PLAN_LIMITS: ("limit_amount",), Dataset.EARNINGS: ("amount",)}


def _typed(dataset: Dataset, text: pl.DataFrame) -> pl.DataFrame:
    """The CSV's columns as a producer would type them: dates as date32, ids as int64, amounts
    as float64. A value the type cannot hold ('$1200.00', '12AB', '2026-02-30') is null."""
    return text.with_columns(
        *(pl.col(c).str.to_date("%Y-%m-%d", strict=False) for c in DATE_COLUMNS.get(dataset, ())),
        *(pl.col(c).cast(pl.Int64, strict=False) for c in INTEGER_COLUMNS.get(dataset, ())),
        *(pl.col(c).cast(pl.Float64, strict=False) for c in FLOAT_COLUMNS.get(dataset, ())),
    )


def test_typed_parquet_sample_publishes_the_same_payouts_as_csv(tmp_path: Path) -> None:
    csv_dir = copy_sample(tmp_path / "csv")
    parquet_dir = tmp_path / "parquet"
    parquet_dir.mkdir()
    for dataset in Dataset:
        if not (csv_dir / f"{dataset.value}.csv").is_file():
            continue  # an optional dataset the sample does not give
        text = pl.read_csv(csv_dir / f"{dataset.value}.csv", infer_schema=False)
        _typed(dataset, text).write_parquet(parquet_dir / f"{dataset.value}.parquet")
    earnings_types = pq.read_schema(parquet_dir / "earnings.parquet")
    assert earnings_types.field("amount").type == pa.float64()
    assert earnings_types.field("mpn_id").type == pa.int64()

    from_csv = run(csv_dir, tmp_path / "out-csv")
    from_parquet = run(parquet_dir, tmp_path / "out-parquet")

    assert from_parquet.reconciliation.holds
    assert from_parquet.reconciliation.per_currency == from_csv.reconciliation.per_currency
    # int64 cannot hold leading zeros: mpn_id 00784512 is read as 784512 (the text of the
    # value), in plans and earnings alike, so it still routes. Everything else is identical.
    expected = from_csv.payouts.drop("run_id").with_columns(
        pl.col("mpn_id").str.strip_chars_start("0")
    )
    assert from_parquet.payouts.drop("run_id").equals(expected)
    assert from_csv.payouts.filter(pl.col("mpn_id") == "00784512").height == 1
    assert set(from_parquet.payouts.get_column("currency")) == {"EUR", "GBP", "JPY", "USD"}


def _earnings_parquet(folder: Path, amount: pa.Array, currency: str = "USD") -> None:
    partner = PLAN_JPY[1] if currency == "JPY" else PLAN_USD[1]
    table = pa.table(
        {
            "earning_id": ["E-1"],
            "mpn_id": pa.array([int(partner)], pa.int64()),
            "program": ["Azure Co-op"],
            "fund": ["Marketing"],
            "earning_month": ["2026-04"],
            "amount": amount,
            "currency": [currency],
        }
    )
    pq.write_table(table, folder / "earnings.parquet")


def _parquet_month(tmp_path: Path, amount: pa.Array, currency: str = "USD") -> Published:
    files = minimal_files()
    del files["earnings.csv"]
    folder = write_folder(tmp_path / "in", files)
    _earnings_parquet(folder, amount, currency)
    return run(folder, tmp_path / "out")


# (typed amount, currency, the payout's earned amount)
PARQUET_GOOD_CASES = [
    pytest.param(pa.array([5000.0]), "USD", "5000.00", id="float64-whole"),
    pytest.param(pa.array([1245.5]), "USD", "1245.50", id="float64-one-decimal"),
    pytest.param(pa.array([0.1]), "USD", "0.10", id="float64-shortest-text-of-0.1"),
    pytest.param(pa.array([-450.25]), "USD", "-450.25", id="float64-reversal"),
    pytest.param(pa.array([5000.0], pa.float32()), "USD", "5000.00", id="float32-whole"),
    pytest.param(pa.array([1100000.0]), "JPY", "1100000.00", id="float64-jpy-whole-yen"),
    pytest.param(pa.array([1100000], pa.int64()), "JPY", "1100000.00", id="int64-jpy"),
    pytest.param(
        pa.array([Decimal("1100000.00")], pa.decimal128(18, 2)),
        "JPY",
        "1100000.00",
        id="decimal-18-2-jpy-whole-yen",
    ),
    pytest.param(
        pa.array([Decimal("12.340")], pa.decimal128(18, 3)),
        "USD",
        "12.34",
        id="decimal-18-3-trailing-zero",
    ),
]


@pytest.mark.parametrize(("amount", "currency", "earned"), PARQUET_GOOD_CASES)
def test_typed_parquet_amount_reads_its_exact_value(
    tmp_path: Path, amount: pa.Array, currency: str, earned: str
) -> None:
    published = _parquet_month(tmp_path, amount, currency)
    assert published.exceptions_of("earnings").is_empty()
    assert published.payouts.get_column("earned_amount").to_list() == [Decimal(earned)]
    assert published.reconciliation.holds


# (typed amount, currency, code, the text reported as value)
PARQUET_BAD_CASES = [
    pytest.param(pa.array([12.345]), "USD", INVALID_AMOUNT, "12.345", id="INVALID_AMOUNT-float"),
    pytest.param(
        pa.array([0.1 + 0.2]),
        "USD",
        INVALID_AMOUNT,
        "0.30000000000000004",
        id="INVALID_AMOUNT-float-sum-not-exact",
    ),
    pytest.param(
        pa.array([1500.5]), "JPY", INVALID_AMOUNT, "1500.5", id="INVALID_AMOUNT-jpy-fraction"
    ),
    pytest.param(
        pa.array([Decimal("12.345")], pa.decimal128(18, 3)),
        "USD",
        INVALID_AMOUNT,
        "12.345",
        id="INVALID_AMOUNT-decimal-three-places",
    ),
    pytest.param(pa.array([float("nan")]), "USD", INVALID_VALUE, "NaN", id="INVALID_VALUE-nan"),
    pytest.param(pa.array([float("inf")]), "USD", INVALID_VALUE, "inf", id="INVALID_VALUE-inf"),
    pytest.param(pa.array([1e20]), "USD", INVALID_VALUE, "1e+20", id="INVALID_VALUE-huge-float"),
    pytest.param(pa.array([None], pa.float64()), "USD", MISSING_VALUE, None, id="MISSING-null"),
]


@pytest.mark.parametrize(("amount", "currency", "code", "value"), PARQUET_BAD_CASES)
def test_typed_parquet_bad_amount_is_an_exception(
    tmp_path: Path, amount: pa.Array, currency: str, code: str, value: str | None
) -> None:
    published = _parquet_month(tmp_path, amount, currency)
    found = published.exceptions_of("earnings")
    assert found.select("row_number", "code", "column", "value", "amount").rows() == [
        (1, code, "amount", value, None)
    ]
    assert published.payouts.is_empty()
    assert published.reconciliation.holds


def test_typed_parquet_dates_read_as_their_text(tmp_path: Path) -> None:
    files = minimal_files()
    del files["plans.csv"], files["programs.csv"]
    folder = write_folder(tmp_path / "in", files)
    for dataset, text in (
        (Dataset.PLANS, csv_text(Dataset.PLANS, [PLAN_USD, PLAN_JPY])),
        (Dataset.PROGRAMS, csv_text(Dataset.PROGRAMS, [PROGRAM])),
    ):
        (tmp_path / "t.csv").write_text(text, encoding="utf-8")
        typed = _typed(dataset, pl.read_csv(tmp_path / "t.csv", infer_schema=False))
        assert typed.schema[DATE_COLUMNS[dataset][0]] == pl.Date
        typed.write_parquet(folder / f"{dataset.value}.parquet")

    published = run(folder, tmp_path / "out")
    assert published.exceptions.is_empty()
    assert published.payouts.select("plan_id", "outcome", "payable_amount").rows() == [
        ("PL-1", "PAY", Decimal("1000.00"))
    ]


def test_typed_parquet_timestamp_is_not_a_date(tmp_path: Path) -> None:
    files = minimal_files()
    del files["programs.csv"]
    folder = write_folder(tmp_path / "in", files)
    pl.DataFrame(
        {
            "program": ["Azure Co-op"],
            "period": ["FY26"],
            "period_start": pl.Series(["2025-07-01 00:00"]).str.to_datetime(),
            "period_end": ["2026-06-30"],
        }
    ).write_parquet(folder / "programs.parquet")

    published = run(folder, tmp_path / "out")
    found = published.exceptions_of("programs")
    assert found.select("row_number", "code", "column").rows() == [
        (1, INVALID_VALUE, "period_start")
    ]


@pytest.mark.parametrize(
    ("column", "values"),
    [
        pytest.param("amount", pa.array([[1.0]]), id="list-column"),
        pytest.param("amount", pa.array([{"a": 1.0}]), id="struct-column"),
        pytest.param("program", pa.array([b"Azure \xff"], pa.binary()), id="binary-not-utf8"),
    ],
)
def test_typed_parquet_column_that_is_not_text_rejects_the_file(
    tmp_path: Path, column: str, values: pa.Array
) -> None:
    files = minimal_files()
    del files["earnings.csv"]
    folder = write_folder(tmp_path / "in", files)
    _earnings_parquet(folder, pa.array([1000.0]))
    table = pq.read_table(folder / "earnings.parquet")
    index = table.schema.get_field_index(column)
    pq.write_table(table.set_column(index, column, values), folder / "earnings.parquet")

    with pytest.raises(InputRejected) as raised:
        run(folder, tmp_path / "out")
    assert "earnings.parquet" in str(raised.value)
    assert f"'{column}'" in str(raised.value)
    assert nothing_published(tmp_path / "out")


@pytest.mark.parametrize(
    "resent_id",
    [
        pytest.param("ERN-2604-0077\u200b", id="INVALID_VALUE-trailing-zero-width-space"),
        pytest.param("ERN-2604\u200d-0077", id="INVALID_VALUE-zero-width-joiner"),
        pytest.param("\ufeffERN-2604-0077", id="INVALID_VALUE-leading-BOM"),
        pytest.param("ERN-2604-0077\x00", id="INVALID_VALUE-trailing-NUL"),
    ],
)
def test_a_row_resent_with_an_invisible_character_is_not_paid_again(
    tmp_path: Path, resent_id: str
) -> None:
    """The tester's case: ERN-2604-0077 resent as ERN-2604-0077 + U+200B was paid twice."""
    rows = [earning("ERN-2604-0077", "1000.00"), earning(resent_id, "1000.00")]
    published = _run_with(tmp_path, **{"earnings.csv": csv_text(Dataset.EARNINGS, rows)})
    assert published.payouts.select("earnings_count", "earned_amount").rows() == [
        (1, Decimal("1000.00"))
    ]
    resent = published.exceptions_of("earnings")
    assert resent.select("row_number", "record_key", "code", "column", "amount").rows() == [
        (2, resent_id, INVALID_VALUE, "earning_id", Decimal("1000.00"))
    ]
    assert "invisible or control character (U+" in resent.item(0, "message")
    assert published.reconciliation.holds


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(
    ("cell", "code"),
    [
        pytest.param("2026-04\n", None, id="trailing-LF-trimmed"),
        pytest.param("2026-04\r\n", None, id="trailing-CRLF-trimmed"),
        pytest.param("\t2026-04 ", None, id="tab-and-space-around-trimmed"),
        pytest.param("２０２６-04", INVALID_VALUE, id="INVALID_VALUE-fullwidth-digits"),
        pytest.param("2026-04\u200b", INVALID_VALUE, id="INVALID_VALUE-zero-width-space"),
        pytest.param("2026-04\n\u200b", INVALID_VALUE, id="INVALID_VALUE-LF-then-zero-width"),
    ],
)
def test_earning_month_cell_reads_alike_in_csv_and_parquet(
    tmp_path: Path, suffix: str, cell: str, code: str | None
) -> None:
    """Surrounding whitespace (a trailing newline too) is trimmed the same way from a CSV field
    and a Parquet string; what is left must be ASCII YYYY-MM, with nothing after it."""
    rows = [earning("E-1", "1000.00"), earning("E-2", "250.00", month=cell)]
    files = minimal_files(rows)
    folder = write_folder(tmp_path / "in", files)
    if suffix == ".parquet":
        earnings = folder / "earnings.csv"
        pl.read_csv(earnings, infer_schema=False).write_parquet(folder / "earnings.parquet")
        earnings.unlink()
        assert pl.read_parquet(folder / "earnings.parquet").item(1, "earning_month") == cell
    published = run(folder, tmp_path / "out")
    found = published.exceptions_of("earnings")
    if code is None:
        assert found.is_empty()
        assert published.payouts.select("earnings_count").item() == 2
    else:
        assert found.select("row_number", "code", "column", "value").rows() == [
            (2, code, "earning_month", cell.strip())
        ]
        assert published.payouts.select("earnings_count").item() == 1
