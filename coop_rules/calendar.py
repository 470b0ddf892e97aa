"""Earning months and payment dates (docs/payouts.md, "The payment date")."""

from __future__ import annotations

import re
from datetime import date

# ASCII digits and nothing around them: `\d` takes any Unicode digit, `$` a trailing newline.
MONTH_PATTERN = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def parse_month(text: str) -> date:
    """The first day of month `YYYY-MM`; ValueError if it is not a real month."""
    match = MONTH_PATTERN.fullmatch(text)
    if not match:
        raise ValueError(f"month {text!r} is not of the form YYYY-MM (for example 2026-04)")
    return date(int(match.group(1)), int(match.group(2)), 1)


def month_text(day: date) -> str:
    """`YYYY-MM` of the month holding `day`."""
    return f"{day.year:04d}-{day.month:02d}"


def add_months(month: str, count: int) -> str:
    """The month `count` months after `month` (negative: before)."""
    first = parse_month(month)
    index = first.year * 12 + first.month - 1 + count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def previous_month(today: date) -> str:
    """The calendar month before the one holding `today` (the scheduled run's default)."""
    return add_months(month_text(today), -1)


def payment_date(month: str, payment_day: int) -> date:
    """Day `payment_day` of the month after `month`: April's earnings are paid on May 15."""
    return parse_month(add_months(month, 1)).replace(day=payment_day)


def months_between(first: str, last: str) -> list[str]:
    """Every month from `first` to `last`, oldest first (empty if `last` is before `first`)."""
    months = []
    current = first
    while current <= last:
        months.append(current)
        current = add_months(current, 1)
    return months
