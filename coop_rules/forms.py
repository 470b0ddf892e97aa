"""The forms of text values, declared once (docs/inputs.md, "The files"): the input schemas check
values against them, the output schemas check what is written, the rules and the command line
use them where a value is read before any schema.

Each is a whole-value pattern for polars (Rust regex: `$` is the end of the text, never of a
line) that `re.fullmatch` reads the same way.
"""

from __future__ import annotations

MPN_ID_FORM = r"^[0-9]{6,10}$"
DATE_FORM = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
MONTH_FORM = r"^[0-9]{4}-[0-9]{2}$"
# An optional sign, digits, an optional point and fraction (`.5` and `5.` included).
AMOUNT_FORM = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
CURRENCY_FORM = r"^[A-Z]{3}$"
EMAIL_FORM = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
COUNTRIES_FORM = r"^[A-Z]{2}(;[A-Z]{2})*$"
