"""Input datasets (docs/inputs.md): declared once, as pandera models over the text of each file.

Every value arrives as text. Each model checks the *form* of every column (required, digits,
calendar date, month, plain decimal, ISO codes) and, in the base model, that no value holds an
invisible or control character; `validate_text` turns pandera's failure cases into exception
rows, and `parse_text` casts the rows that passed to their typed columns.
Checks that depend on the rule settings (statuses, the currency table) are added per run.

Each check is one polars expression (`CHECK_EXPRESSIONS`): the pandera check runs it, and
`compile_checks` gives the same expressions to the one-pass screen, so pandera's public
`validate` sees only the rows the screen fails.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pandera.polars as pa
import polars as pl
from pandera.polars import Field, PolarsData

from coop_rules.forms import (
    AMOUNT_FORM,
    COUNTRIES_FORM,
    CURRENCY_FORM,
    DATE_FORM,
    EMAIL_FORM,
    MONTH_FORM,
    MPN_ID_FORM,
)
from coop_rules.money import MONEY, fraction_digits
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import ROW_NUMBER, Code, Dataset, ProfileStatus

# Forms of text (docs/inputs.md, "The files"), declared once in coop_rules/forms.py.
DIGITS_6_10 = MPN_ID_FORM
# An invisible format character (Cf: zero-width spaces and joiners, bidi controls, a BOM) or a
# control character (Cc) in a value; free text may hold tab, CR and LF (docs/inputs.md, "Hostile
# input").
HIDDEN = r"[\p{Cc}\p{Cf}]"
HIDDEN_IN_FREE_TEXT = r"[\p{Cc}\p{Cf}--[\t\n\r]]"
# Kinds whose form admits visible ASCII only: the form check already rejects a hidden character.
FORMED_KINDS = frozenset({"digits", "date", "month", "amount", "currency", "countries"})
# Decimal(18, 2) holds at most 16 digits before the point.
MAX_INTEGER_DIGITS = 16
# A few-valued column's failing values are compared one by one up to this many.
FEW_BAD_VALUES = 8
MONTHS = [f"{month:02d}" for month in range(1, 13)]
TOO_MANY_INTEGER_DIGITS = rf"^[+-]?0*[1-9][0-9]{{{MAX_INTEGER_DIGITS},}}(\.[0-9]*)?$"

# What a person is told a column should look like, by the kind of the column.
EXPECTED = {
    "digits": "6 to 10 digits",
    "date": "a real calendar date YYYY-MM-DD",
    "month": "a real month YYYY-MM",
    "amount": "a plain decimal number (optional sign, digits, optional point and fraction)",
    "currency": "a three-letter ISO 4217 code",
    "email": "an email address",
    "countries": "ISO 3166 alpha-2 country codes separated by ';'",
    "status": "one of the plan statuses",
    "profile_status": " or ".join(s.value for s in ProfileStatus),
    "text": "text",
    "free_text": "text",
}


def _kind(kind: str) -> dict[str, str]:
    return {"kind": kind}


@dataclass(frozen=True)
class CheckOn:
    """What the expression of a check is given: the column it checks (`*` for a check of the
    frame), the column's kind, and the check's parameters (pandera's `Check.statistics`)."""

    column: str
    kind: str = "text"
    statistics: Mapping[str, Any] = field(default_factory=dict)


# A check as one polars expression: true where a row passes, null where pandera would pass it
# for a null value (`ignore_na`). The pandera checks and the one-pass screen both use these.
CheckExpression = Callable[[CheckOn], pl.Expr]


def visible_text(on: CheckOn) -> pl.Expr:
    """No invisible format or control character, so a resent id cannot pass for a new one
    (free text may hold tab, CR and LF); a formed column is left to its form."""
    if on.kind in FORMED_KINDS:
        # True on every row, elementwise: a `repeat` over `len()` would make a streaming query
        # hold all its rows first.
        return pl.col(on.column).is_null() | True
    hidden = HIDDEN_IN_FREE_TEXT if on.kind == "free_text" else HIDDEN
    return ~pl.col(on.column).str.contains(hidden).fill_null(False)


def _real(on: CheckOn, form: str, suffix: str) -> pl.Expr:
    """True where the text is empty, not of the form (the form check reports it, once), or a
    real calendar value (2026-02-30 is not)."""
    text = pl.col(on.column)
    unreal = (
        text.str.contains(form) & (text + suffix).str.to_date("%Y-%m-%d", strict=False).is_null()
    )
    return ~unreal.fill_null(False)


def calendar_date(on: CheckOn) -> pl.Expr:
    """A date of the form is a real calendar date."""
    return _real(on, DATE_FORM, "")


def calendar_month(on: CheckOn) -> pl.Expr:
    """A month of the form is a real month: every year of four digits is a calendar year, so
    its month 01 to 12 is the whole test (the same verdict as a date, a third of the cost)."""
    text = pl.col(on.column)
    unreal = text.str.contains(MONTH_FORM) & ~text.str.slice(5).is_in(MONTHS)
    return ~unreal.fill_null(False)


def non_negative(on: CheckOn) -> pl.Expr:
    """A limit is 0 or more: only amounts of the form, and below zero ('-0.00' is zero, '-abc'
    is not a number)."""
    text = pl.col(on.column)
    negative = text.str.contains(AMOUNT_FORM) & text.str.starts_with("-")
    return ~(negative & text.str.contains("[1-9]")).fill_null(False)


def amount_in_range(on: CheckOn) -> pl.Expr:
    """A plain decimal with no more significant digits before the point than fit, in one pass."""
    return ~pl.col(on.column).str.contains(TOO_MANY_INTEGER_DIGITS).fill_null(False)


def known_currency(on: CheckOn) -> pl.Expr:
    """A currency of the form is in the rules' currency table."""
    text = pl.col(on.column)
    return text.is_in(list(on.statistics["currencies"])) | ~text.str.contains(CURRENCY_FORM)


def fits_currency(on: CheckOn) -> pl.Expr:
    """An amount has no more decimals than its currency's minor unit (never rounded:
    docs/inputs.md)."""
    digits: Mapping[str, int] = on.statistics["digits"]
    codes: dict[int, list[str]] = {}
    for code, count in digits.items():
        codes.setdefault(count, []).append(code)
    # One set per digit count, not a lookup of the table (`replace_strict`): the streaming
    # engine holds every row of a query that looks values up so (measured: 0.9 GB at 10M).
    allowed: pl.Expr = pl.lit(None, pl.Int64)
    for count, members in codes.items():
        allowed = (
            pl.when(pl.col("currency").is_in(members))
            .then(pl.lit(count, pl.Int64))
            .otherwise(allowed)
        )
    amount = pl.col("amount")
    applies = amount.str.contains(AMOUNT_FORM) & allowed.is_not_null()
    return ~(applies & (fraction_digits(amount) > allowed)).fill_null(False)


def _anchored(pattern: str) -> str:
    # As pandera's own str_matches: the pattern must match at the start.
    return pattern if pattern.startswith("^") else f"^{pattern}"


# Every check of the input schemas, by its pandera name: a check missing here cannot be screened,
# and `compile_checks` refuses it rather than let it pass unseen.
CHECK_EXPRESSIONS: dict[str, CheckExpression] = {
    "str_matches": lambda on: pl.col(on.column).str.contains(_anchored(on.statistics["pattern"])),
    "isin": lambda on: pl.col(on.column).is_in(list(on.statistics["allowed_values"])),
    "visible_text": visible_text,
    "calendar_date": calendar_date,
    "calendar_month": calendar_month,
    "non_negative": non_negative,
    "amount_in_range": amount_in_range,
    "known_currency": known_currency,
    "fits_currency": fits_currency,
}


def _selected(data: PolarsData, expression: CheckExpression, on: CheckOn) -> pl.LazyFrame:
    """The boolean column of `expression` over pandera's data."""
    return data.lazyframe.select(expression(on))


def expression_check(name: str, **statistics: Any) -> pa.Check:
    """A pandera check that runs the expression `CHECK_EXPRESSIONS[name]` with `statistics`."""
    expression = CHECK_EXPRESSIONS[name]

    def check(data: PolarsData) -> pl.LazyFrame:
        return _selected(data, expression, CheckOn(data.key, statistics=statistics))

    return pa.Check(check, name=name, statistics=statistics)


class TextModel(pa.DataFrameModel):
    """Base of the input models: every column is text; extra columns are allowed."""

    class Config:
        strict = False
        coerce = False

    @pa.check(".*", regex=True, name="visible_text")
    def visible_text(cls, data: PolarsData) -> pl.LazyFrame:
        kind = (cls.to_schema().columns[data.key].metadata or {}).get("kind", "text")
        return _selected(data, visible_text, CheckOn(data.key, kind))


class Programs(TextModel):
    program: str = Field(nullable=False, metadata=_kind("text"))
    period: str = Field(nullable=False, metadata=_kind("text"))
    period_start: str = Field(nullable=False, str_matches=DATE_FORM, metadata=_kind("date"))
    period_end: str = Field(nullable=False, str_matches=DATE_FORM, metadata=_kind("date"))

    @pa.check("period_start", "period_end", name="calendar_date")
    def calendar_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _selected(data, calendar_date, CheckOn(data.key))


class Plans(TextModel):
    plan_id: str = Field(nullable=False, metadata=_kind("text"))
    mpn_id: str = Field(nullable=False, str_matches=DIGITS_6_10, metadata=_kind("digits"))
    program: str = Field(nullable=False, metadata=_kind("text"))
    fund: str = Field(nullable=False, metadata=_kind("text"))
    period: str = Field(nullable=False, metadata=_kind("text"))
    market: str = Field(nullable=False, metadata=_kind("free_text"))
    currency: str = Field(nullable=False, str_matches=CURRENCY_FORM, metadata=_kind("currency"))
    reviewer_email: str = Field(nullable=False, str_matches=EMAIL_FORM, metadata=_kind("email"))
    status: str = Field(nullable=False, metadata=_kind("status"))
    created_on: str = Field(nullable=False, str_matches=DATE_FORM, metadata=_kind("date"))
    first_submitted_on: str = Field(nullable=True, str_matches=DATE_FORM, metadata=_kind("date"))
    last_submitted_on: str = Field(nullable=True, str_matches=DATE_FORM, metadata=_kind("date"))

    @pa.check("created_on", "first_submitted_on", "last_submitted_on", name="calendar_date")
    def calendar_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _selected(data, calendar_date, CheckOn(data.key))


class PlanLimits(TextModel):
    plan_id: str = Field(nullable=False, metadata=_kind("text"))
    effective_month: str = Field(nullable=False, str_matches=MONTH_FORM, metadata=_kind("month"))
    limit_amount: str = Field(nullable=False, str_matches=AMOUNT_FORM, metadata=_kind("amount"))

    @pa.check("effective_month", name="calendar_month")
    def calendar_month(cls, data: PolarsData) -> pl.LazyFrame:
        return _selected(data, calendar_month, CheckOn(data.key))

    @pa.check("limit_amount", name="non_negative")
    def non_negative(cls, data: PolarsData) -> pl.LazyFrame:
        return _selected(data, non_negative, CheckOn(data.key))


class Earnings(TextModel):
    earning_id: str = Field(nullable=False, metadata=_kind("text"))
    mpn_id: str = Field(nullable=False, str_matches=DIGITS_6_10, metadata=_kind("digits"))
    program: str = Field(nullable=False, metadata=_kind("text"))
    fund: str = Field(nullable=False, metadata=_kind("text"))
    earning_month: str = Field(nullable=False, str_matches=MONTH_FORM, metadata=_kind("month"))
    amount: str = Field(nullable=False, str_matches=AMOUNT_FORM, metadata=_kind("amount"))
    currency: str = Field(nullable=False, str_matches=CURRENCY_FORM, metadata=_kind("currency"))

    @pa.check("earning_month", name="calendar_month")
    def calendar_month(cls, data: PolarsData) -> pl.LazyFrame:
        return _selected(data, calendar_month, CheckOn(data.key))


class Campaigns(TextModel):
    campaign_id: str = Field(nullable=False, metadata=_kind("text"))
    plan_id: str = Field(nullable=False, metadata=_kind("text"))
    name: str = Field(nullable=False, metadata=_kind("free_text"))


class Activities(TextModel):
    activity_id: str = Field(nullable=False, metadata=_kind("text"))
    campaign_id: str = Field(nullable=False, metadata=_kind("text"))
    name: str = Field(nullable=False, metadata=_kind("free_text"))
    countries: str = Field(nullable=False, str_matches=COUNTRIES_FORM, metadata=_kind("countries"))


class PaymentProfiles(TextModel):
    """Optional: whether each partner can be paid (docs/payments.md). The date being required
    when action is required is a cross-check (`integrity.profile_dates`)."""

    mpn_id: str = Field(nullable=False, str_matches=DIGITS_6_10, metadata=_kind("digits"))
    profile_status: str = Field(
        nullable=False,
        isin=[s.value for s in ProfileStatus],
        metadata=_kind("profile_status"),
    )
    action_required_since: str = Field(nullable=True, str_matches=DATE_FORM, metadata=_kind("date"))

    @pa.check("action_required_since", name="calendar_date")
    def calendar_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _selected(data, calendar_date, CheckOn(data.key))


@dataclass(frozen=True)
class InputSpec:
    """One input dataset: its model, its record key and the keys that must be unique.

    `few_valued`: columns that hold few distinct values in any file (months, dates, codes, names
    of programs and funds): their checks are judged once per distinct value.
    """

    dataset: Dataset
    model: type[TextModel]
    record_key: str
    unique_keys: tuple[tuple[str, ...], ...]
    few_valued: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.model.to_schema().columns)

    def kind(self, column: str) -> str:
        return (self.model.to_schema().columns[column].metadata or {}).get("kind", "text")


INPUTS: dict[Dataset, InputSpec] = {
    spec.dataset: spec
    for spec in (
        InputSpec(Dataset.PROGRAMS, Programs, "program", (("program", "period"),)),
        InputSpec(
            Dataset.PLANS,
            Plans,
            "plan_id",
            (("plan_id",),),
            (
                *("program", "fund", "period", "market", "currency", "status"),
                # A few hundred days a year: each date judged once (0.55 to 0.31 CPU s, 1M plans).
                *("created_on", "first_submitted_on", "last_submitted_on"),
            ),
        ),
        InputSpec(
            Dataset.PLAN_LIMITS,
            PlanLimits,
            "plan_id",
            (("plan_id", "effective_month"),),
            ("effective_month",),
        ),
        InputSpec(Dataset.CAMPAIGNS, Campaigns, "campaign_id", (("campaign_id",),)),
        InputSpec(Dataset.ACTIVITIES, Activities, "activity_id", (("activity_id",),)),
        InputSpec(
            Dataset.EARNINGS,
            Earnings,
            "earning_id",
            (("earning_id",),),
            ("program", "fund", "earning_month", "currency"),
        ),
        InputSpec(Dataset.PAYMENT_PROFILES, PaymentProfiles, "mpn_id", (("mpn_id",),)),
    )
}

# pandera check name -> exception code; any other failed check is INVALID_VALUE.
CHECK_CODES = {
    "not_nullable": Code.MISSING_VALUE,
    "known_currency": Code.UNKNOWN_CURRENCY,
    "fits_currency": Code.INVALID_AMOUNT,
    "amount_in_range": Code.INVALID_AMOUNT,
}
# Checks over several columns, reported on this column.
FRAME_CHECK_COLUMNS = {"fits_currency": "amount"}


def schema_for(spec: InputSpec, settings: RuleSettings) -> pa.DataFrameSchema:
    """The model of `spec` with the checks that depend on this run's rule settings."""
    schema = spec.model.to_schema()
    currencies = list(settings.currencies)
    for name, column in schema.columns.items():
        kind = (column.metadata or {}).get("kind")
        if kind == "currency":
            known = expression_check("known_currency", currencies=currencies)
            schema = schema.update_column(name, checks=[*column.checks, known])
        elif kind == "status":
            schema = schema.update_column(
                name, checks=[*column.checks, pa.Check.isin(list(settings.statuses.all))]
            )
        elif kind == "amount":
            schema = schema.update_column(
                name, checks=[*column.checks, expression_check("amount_in_range")]
            )
    if "amount" in schema.columns and "currency" in schema.columns:
        schema = copy.deepcopy(schema)
        schema.checks = [
            *schema.checks,
            expression_check("fits_currency", digits=dict(settings.currencies)),
        ]
    return schema


def failure_exceptions(
    failures: pl.DataFrame, frame: pl.DataFrame, spec: InputSpec, settings: RuleSettings
) -> pl.DataFrame:
    """Turn pandera's failure cases into exception rows (code, column, raw value, row number)."""
    if failures.is_empty():
        return empty_exceptions()
    _refuse_frame_failures(failures, spec)
    cases = _cases_with_values(failures, frame, spec)
    found = cases.with_columns(
        _code().alias("code"), _message(cases, spec, settings).alias("message")
    )
    # A hidden character can fail a column's form too: one exception per cell and sentence.
    found = found.unique(["index", "column", "code", "message"], keep="first", maintain_order=True)
    return finish_exceptions(found, spec.dataset)


def _refuse_frame_failures(failures: pl.DataFrame, spec: InputSpec) -> None:
    """Columns are checked when the file is read, so pandera can only fail rows here; a failure
    of the frame as a whole would be a bug, and is never dropped silently."""
    whole = failures.filter(pl.col("index").is_null())
    if not whole.is_empty():
        first = whole.row(0, named=True)
        raise ValueError(
            f"{spec.dataset.value}: schema check {first['check']} failed on column "
            f"{first['column']}: {first['failure_case']}"
        )


def _cases_with_values(
    failures: pl.DataFrame, frame: pl.DataFrame, spec: InputSpec
) -> pl.DataFrame:
    """One row per failure: its check, column, row number, record key, the raw `value` of the
    cell, and the row's currency (`__currency`) when the dataset has one."""
    rows = frame.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("index"),
        pl.col(ROW_NUMBER),
        pl.col(spec.record_key).alias("record_key"),
        *([pl.col("currency").alias("__currency")] if "currency" in frame.columns else []),
    )
    cases = failures.select(
        pl.col("index").cast(pl.Int64),
        pl.col("check"),
        pl.col("check")
        .replace_strict(FRAME_CHECK_COLUMNS, default=pl.col("column"))
        .alias("column"),
    ).join(rows, on="index", how="left")
    values = [
        cases.filter(pl.col("column") == name).with_columns(
            frame.get_column(name)
            .gather(cases.filter(pl.col("column") == name)["index"])
            .alias("value")
        )
        for name in cases.get_column("column").unique(maintain_order=True)
    ]
    return (
        pl.concat(values) if values else cases.with_columns(pl.lit(None, pl.String).alias("value"))
    )


def _code() -> pl.Expr:
    """The exception code of a failed check: a value outside its set is INVALID_VALUE."""
    check = pl.col("check")
    return (
        pl.when(check.str.starts_with("isin"))
        .then(pl.lit(Code.INVALID_VALUE.value))
        .otherwise(
            check.replace_strict(
                CHECK_CODES, default=Code.INVALID_VALUE.value, return_dtype=pl.String
            )
        )
    )


def _message(cases: pl.DataFrame, spec: InputSpec, settings: RuleSettings) -> pl.Expr:
    """The sentence of each failure: what is wrong with the value and what was expected."""
    check = pl.col("check")
    column = pl.col("column")
    value = pl.col("value")
    code = _code()
    kinds = {name: spec.kind(name) for name in spec.columns}
    expected = column.replace_strict(
        {name: EXPECTED[kind] for name, kind in kinds.items()}, default="text"
    )
    has_currency = "__currency" in cases.columns
    allowed_digits = (
        pl.col("__currency").replace_strict(
            settings.currencies, default=None, return_dtype=pl.Int64
        )
        if has_currency
        else pl.lit(None, pl.Int64)
    )
    free_text = [name for name, kind in kinds.items() if kind == "free_text"]
    hidden = (
        pl.when(column.is_in(free_text))
        .then(value.str.extract(f"({HIDDEN_IN_FREE_TEXT})"))
        .otherwise(value.str.extract(f"({HIDDEN})"))
    )
    shown, code_point = _hidden_characters(cases.get_column("value"))
    return (
        pl.when(code == Code.MISSING_VALUE)
        .then(pl.format("{} is empty; a value is required", column))
        .when((code == Code.INVALID_VALUE) & hidden.is_not_null())
        .then(
            pl.format(
                "{} '{}' holds an invisible or control character ({}); retype the value",
                column,
                value.str.replace_many(shown),
                hidden.replace_strict(code_point, return_dtype=pl.String),
            )
        )
        .when(code == Code.UNKNOWN_CURRENCY)
        .then(pl.format("currency '{}' is not in the currency table of the rules", value))
        .when(check == "fits_currency")
        .then(
            pl.format(
                "{} '{}' has more decimals than {} allows ({}); it is never rounded",
                column,
                value,
                pl.col("__currency") if has_currency else pl.lit("its currency"),
                allowed_digits.cast(pl.String),
            )
        )
        .when(check == "amount_in_range")
        .then(
            pl.format(
                "{} '{}' is out of range: at most {} digits before the point fit Decimal(18, 2)",
                column,
                value,
                pl.lit(MAX_INTEGER_DIGITS),
            )
        )
        .when(check == "non_negative")
        .then(pl.format("{} '{}' is negative; a limit is 0 or more", column, value))
        .when(column == "status")
        .then(
            pl.format(
                "status '{}' is not one of {}", value, pl.lit(", ".join(settings.statuses.all))
            )
        )
        .otherwise(pl.format("{} '{}' is not {}", column, value, expected))
    )


def _hidden_characters(values: pl.Series) -> tuple[dict[str, str], dict[str, str]]:
    """For the few distinct hidden characters in `values`: the marker that shows each in a
    message (`<U+200B>`), and its code point (`U+200B`)."""
    found = values.str.extract_all(HIDDEN).explode().drop_nulls().unique().to_list()
    code_point = {char: f"U+{ord(char):04X}" for char in found}
    return {char: f"<{point}>" for char, point in code_point.items()}, code_point


EXCEPTION_COLUMNS: dict[str, pl.DataType] = {
    "source": pl.String(),
    "row_number": pl.Int64(),
    "record_key": pl.String(),
    "code": pl.String(),
    "column": pl.String(),
    "value": pl.String(),
    "message": pl.String(),
    "amount": MONEY,
    "currency": pl.String(),
}

# The order of the exception rows of a month (nulls last): by file, then as a person reads it.
EXCEPTION_ORDER = ("source", "row_number", "code", "column")


def empty_exceptions() -> pl.DataFrame:
    """An exceptions frame with no rows (the columns of docs/payouts.md before run and month)."""
    return pl.DataFrame(schema=EXCEPTION_COLUMNS)


def finish_exceptions(frame: pl.DataFrame, dataset: Dataset) -> pl.DataFrame:
    """Give exception rows of `dataset` every exception column, in order, with its type."""
    present = set(frame.columns)
    return frame.select(
        pl.lit(dataset.value).alias("source") if "source" not in present else pl.col("source"),
        *(
            (pl.col(name) if name in present else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in EXCEPTION_COLUMNS.items()
            if name != "source"
        ),
    )


def validate_text(
    frame: pl.DataFrame,
    spec: InputSpec,
    settings: RuleSettings,
    schema: pa.DataFrameSchema | None = None,
) -> pl.DataFrame:
    """Run the dataset's pandera schema over its text; return one exception row per problem.

    Every check of the schema first runs once over all rows at the same time (`passes`); the
    rows that fail any of them, a few per cent, then go through pandera's validation, which
    names the column, the check and the value of each failure. `schema`: `schema_for(spec,
    settings)`, built once by a caller that validates many chunks.
    """
    schema = schema if schema is not None else schema_for(spec, settings)
    suspects = frame.filter(~passes(frame, schema, spec.few_valued))
    if suspects.is_empty():
        return empty_exceptions()
    try:
        schema.validate(suspects, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return failure_exceptions(errors.failure_cases, suspects, spec, settings)
    return empty_exceptions()


@dataclass(frozen=True, eq=False)
class CompiledCheck:
    """One check of a schema as a polars expression (`compile_checks`): the column its
    exceptions name, the pandera check's name, its exception code, and `passes`, true where a
    row passes it as pandera would judge the row (never null)."""

    column: str
    name: str
    code: Code
    passes: pl.Expr
    # A check of the frame (several columns), not of its column's values alone.
    of_frame: bool = False


def code_of(check: str) -> Code:
    """The exception code of a failed check, by its pandera name (as `_code` reads pandera's
    failure cases): a value outside its set is INVALID_VALUE."""
    if check.startswith("isin"):
        return Code.INVALID_VALUE
    return CHECK_CODES.get(check, Code.INVALID_VALUE)


def compile_checks(schema: pa.DataFrameSchema) -> list[CompiledCheck]:
    """Every check of `schema` (the columns' nullability, their checks, the frame's checks) as a
    polars expression, from the same `CHECK_EXPRESSIONS` the pandera checks run: a row passes
    them all exactly when pandera finds no failure in it (docs/inputs.md).

    The expressions are elementwise, so they run over all rows at once, in any engine.
    """
    compiled: list[CompiledCheck] = []
    for name, column in schema.columns.items():
        kind = (column.metadata or {}).get("kind", "text")
        if not column.nullable:
            missing = "not_nullable"
            compiled.append(
                CompiledCheck(name, missing, code_of(missing), pl.col(name).is_not_null())
            )
        compiled.extend(
            _compiled(check, CheckOn(name, kind, check.statistics), name) for check in column.checks
        )
    for check in schema.checks:
        column_name = FRAME_CHECK_COLUMNS[check.name]
        on = CheckOn("*", statistics=check.statistics)
        compiled.append(replace(_compiled(check, on, column_name), of_frame=True))
    return compiled


def _compiled(check: pa.Check, on: CheckOn, column: str) -> CompiledCheck:
    if check.name not in CHECK_EXPRESSIONS:
        raise ValueError(f"check {check.name} of column {column} has no expression to screen it")
    result = CHECK_EXPRESSIONS[check.name](on)
    # pandera passes a null result when the check ignores nulls (its default), else fails it.
    # (`fill_null`, not `result | result.is_null()`: that runs the check twice over each row.)
    passes = result.fill_null(check.ignore_na)
    return CompiledCheck(column, check.name, code_of(check.name), passes.alias(column))


def passes(
    frame: pl.DataFrame, schema: pa.DataFrameSchema, few_valued: Collection[str] = ()
) -> pl.Series:
    """True for each row that passes every check of `schema`, evaluated in one parallel pass
    of the compiled checks (`compile_checks`): exactly the rows with no failure in pandera.

    The column checks of a `few_valued` column run once over its distinct values (every
    column check judges a value by itself), and the rows holding a failing value fail.
    """
    compiled = compile_checks(schema)
    by_value = [c for c in compiled if c.column in few_valued and not c.of_frame]
    flags = [c.passes for c in compiled if c not in by_value]
    for name in dict.fromkeys(c.column for c in by_value):
        flags.append(_passing_values(frame, name, [c.passes for c in by_value if c.column == name]))
    if not flags:
        return pl.repeat(True, frame.height, eager=True)
    # Lazy, so an expression several checks share (the amount's form) runs once.
    return frame.lazy().select(pl.all_horizontal(flags).alias("passes")).collect().to_series()


def _passing_values(frame: pl.DataFrame, name: str, checks: list[pl.Expr]) -> pl.Expr:
    """True where the value of column `name` passes `checks` (its compiled column checks),
    each distinct value judged once."""
    distinct = frame.select(pl.col(name).unique())
    passing = distinct.select(pl.all_horizontal(checks) if checks else pl.lit(True)).to_series()
    bad = distinct.filter(~passing).get_column(name)
    value = pl.col(name)
    ok = value.is_not_null() if bad.null_count() > 0 else pl.repeat(True, pl.len())
    bad = bad.drop_nulls()
    # Usually every value passes, or one or two fail: a comparison per failing value costs
    # less than looking every row up among the good values (measured: a third of the time).
    if bad.len() > FEW_BAD_VALUES:
        ok &= ~value.is_in(bad.implode()).fill_null(False)
    elif bad.len() > 0:
        ok &= ~pl.any_horizontal(value == v for v in bad).fill_null(False)
    return ok.alias(name)


# A frame, eager or lazy: parsing is the same expressions either way.
Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def parse_text(frame: Frame, spec: InputSpec) -> Frame:
    """Cast each column to its type; only rows that passed `validate_text` keep their values.

    Casting is safe only after validation: polars truncates extra decimals silently.
    """
    casts = []
    for name in spec.columns:
        kind = spec.kind(name)
        if kind == "date":
            casts.append(pl.col(name).str.to_date("%Y-%m-%d", strict=False))
        elif kind == "amount":
            casts.append(pl.col(name).cast(MONEY, strict=False))
    return frame.with_columns(casts)
