"""Earning months and payment dates (docs/payouts.md, "The payment date")."""

from __future__ import annotations

from datetime import date

import pytest

from coop_rules import calendar


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-04", date(2026, 4, 1), id="April"),
        pytest.param("2026-12", date(2026, 12, 1), id="December"),
        pytest.param("2026-01", date(2026, 1, 1), id="January"),
    ],
)
def test_parse_month(text: str, expected: date) -> None:
    assert calendar.parse_month(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-13",
        "2026-00",
        "2026-4",
        "26-04",
        "2026-04-01",
        "2026/04",
        "",
        "April 2026",
        " 2026-04",
        pytest.param("２０２６-04", id="fullwidth-digits"),
        pytest.param("٢٠٢٦-04", id="arabic-indic-digits"),
        pytest.param("2026-0４", id="one-fullwidth-digit"),
        pytest.param("2026-04\n", id="trailing-newline"),
        pytest.param("2026-04\r\n", id="trailing-CRLF"),
        pytest.param("2026-04 ", id="trailing-space"),
        pytest.param("2026-04\u200b", id="trailing-zero-width-space"),
        pytest.param("2026-04\nX", id="second-line"),
    ],
)
def test_parse_month_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        calendar.parse_month(text)


def test_a_rejected_month_is_shown_with_its_invisible_characters_escaped() -> None:
    with pytest.raises(ValueError, match=r"month '2026-04\\n' is not"):
        calendar.parse_month("2026-04\n")


@pytest.mark.parametrize(
    ("month", "count", "expected"),
    [
        pytest.param("2026-04", 1, "2026-05", id="next-month"),
        pytest.param("2026-12", 1, "2027-01", id="December-to-January-next-year"),
        pytest.param("2026-01", -1, "2025-12", id="January-back-to-December"),
        pytest.param("2026-04", -14, "2025-02", id="back-over-a-year"),
        pytest.param("2026-04", 0, "2026-04", id="same-month"),
    ],
)
def test_add_months(month: str, count: int, expected: str) -> None:
    assert calendar.add_months(month, count) == expected


@pytest.mark.parametrize(
    ("month", "day", "expected"),
    [
        pytest.param("2026-04", 15, date(2026, 5, 15), id="April-paid-May-15"),
        pytest.param("2026-12", 15, date(2027, 1, 15), id="December-paid-January-15-next-year"),
        pytest.param("2026-01", 15, date(2026, 2, 15), id="January-paid-February-15"),
        pytest.param("2026-01", 28, date(2026, 2, 28), id="payment_day-28-in-February"),
        pytest.param("2026-04", 1, date(2026, 5, 1), id="payment_day-1"),
    ],
)
def test_payment_date(month: str, day: int, expected: date) -> None:
    assert calendar.payment_date(month, day) == expected


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        pytest.param(date(2026, 5, 1), "2026-04", id="scheduled-run-on-the-1st"),
        pytest.param(date(2026, 5, 31), "2026-04", id="end-of-month"),
        pytest.param(date(2027, 1, 1), "2026-12", id="January-gives-December-of-last-year"),
    ],
)
def test_previous_month(today: date, expected: str) -> None:
    assert calendar.previous_month(today) == expected


def test_months_between_oldest_first_across_a_year() -> None:
    assert calendar.months_between("2025-11", "2026-02") == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]
    assert calendar.months_between("2026-04", "2026-04") == ["2026-04"]
    assert calendar.months_between("2026-05", "2026-04") == []


def test_month_text() -> None:
    assert calendar.month_text(date(2026, 4, 30)) == "2026-04"
