"""Rule settings, parsed from the text of a rules TOML file (docs/payouts.md, docs/payments.md).

A rules file of the same form as the shipped `rules.toml` replaces it for a run. A setting the
file leaves out gets its shipped value, from the text of the packaged `rules.toml` that the
caller reads and passes in (`flows/rules.py`; this package reads no file): the shipped values are
written down once, in that file. Tables are replaced whole, never merged key by key,
so that a file can drop a currency or a status: a file that gives `[statuses]` gives its sets
(`unsubmitted` left out is the shipped one), a file that gives `[currencies]` gives the whole
currency table, and a file that gives `[minimum_payment]` gives every minimum (a currency it
does not list has minimum 0). A file that gives `[currencies]` but
no `[minimum_payment]` keeps the shipped minimums of the currencies it lists.

Every setting is typed strictly: `payment_day = true` or `"15"` is an error naming the setting,
not 1 or 15. Amounts are TOML numbers read exactly (`200.10` is Decimal('200.10'), never a
binary float); a TOML integer amount is the exact Decimal of the integer.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

DEFAULT_RULES_NAME = "rules.toml"

# Amounts are stored as Decimal(18, 2): at most 16 digits before the point.
MAX_INTEGER_DIGITS = 16
# A century: day counts beyond it are a typo, and far beyond it overflow date arithmetic.
MAX_DAYS = 36_500


class Statuses(BaseModel):
    """The plan statuses by what they mean for a payout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approved: tuple[StrictStr, ...]
    held: tuple[StrictStr, ...]
    rejected: tuple[StrictStr, ...]
    unsubmitted: tuple[StrictStr, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.approved + self.held + self.rejected

    @model_validator(mode="after")
    def _disjoint(self) -> Statuses:
        seen = self.approved + self.held + self.rejected
        if len(set(seen)) != len(seen):
            raise ValueError("a status is listed in more than one of approved, held, rejected")
        return self


class RuleSettings(BaseModel):
    """Everything a run's rules depend on besides the input data (`parse_rules` gives a rules
    file's settings, the shipped file's where it leaves one out)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    payment_day: StrictInt = Field(ge=1, le=28)
    resubmission_grace_days: StrictInt = Field(ge=0, le=MAX_DAYS)
    cap_basis: Literal["cumulative", "monthly"]
    statuses: Statuses
    currencies: dict[StrictStr, StrictInt]
    minimum_payment: dict[StrictStr, Decimal]
    hold_days: StrictInt = Field(ge=0, le=MAX_DAYS)

    @field_validator("currencies")
    @classmethod
    def _currencies_fit_storage(cls, value: dict[str, int]) -> dict[str, int]:
        for code, digits in value.items():
            if len(code) != 3 or not code.isalpha() or not code.isupper():
                raise ValueError(f"currency {code!r} is not an ISO 4217 code")
            if not 0 <= digits <= 2:
                raise ValueError(
                    f"currency {code} has {digits} minor digits; amounts are stored as "
                    "Decimal(18, 2), so at most 2 are allowed"
                )
        return value

    @field_validator("minimum_payment", mode="before")
    @classmethod
    def _amounts_are_numbers(cls, value: Any) -> Any:
        # Strict: a TOML number (read as Decimal, or int) only; never a bool or text.
        if not isinstance(value, dict):
            return value
        exact = {}
        for code, amount in value.items():
            if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
                raise ValueError(f"{code} = {amount!r} is not a number")
            exact[code] = Decimal(amount) if isinstance(amount, int) else amount
        return exact

    @field_validator("minimum_payment")
    @classmethod
    def _minimums_fit_their_currency(
        cls, value: dict[str, Decimal], info: ValidationInfo
    ) -> dict[str, Decimal]:
        currencies = info.data.get("currencies")
        if currencies is None:  # the currency table failed; that error is reported
            return value
        for code, amount in value.items():
            if code not in currencies:
                raise ValueError(f"{code} is not in the currency table [currencies]")
            if not amount.is_finite() or amount < 0:
                raise ValueError(f"{code} = {amount} is not an amount of 0 or more")
            exponent = amount.as_tuple().exponent
            decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
            if decimals > currencies[code]:
                raise ValueError(
                    f"{code} = {amount} has more decimals than {code} allows "
                    f"({currencies[code]}); it is never rounded"
                )
            if amount.adjusted() >= MAX_INTEGER_DIGITS:
                raise ValueError(f"{code} = {amount} does not fit Decimal(18, 2)")
        return value


class RulesError(ValueError):
    """The rules file cannot be used; the message is one sentence for a person."""


def with_shipped(data: Mapping[str, Any], shipped: Mapping[str, Any]) -> dict[str, Any]:
    """A rules file's settings (`data`, as TOML data) with each setting it leaves out taken
    from the shipped file's (`shipped`). Tables are replaced whole: a file's `[statuses]`
    without `unsubmitted` keeps the shipped ones, and a file with its own currency table but no
    minimums keeps the shipped minimums of its currencies only."""
    merged = {**shipped, **data}
    statuses = data.get("statuses")
    if isinstance(statuses, dict) and "unsubmitted" not in statuses:
        merged["statuses"] = {**statuses, "unsubmitted": shipped["statuses"]["unsubmitted"]}
    if "currencies" in data and "minimum_payment" not in data:
        listed = data["currencies"] if isinstance(data["currencies"], dict) else {}
        minimums = shipped["minimum_payment"].items()
        merged["minimum_payment"] = {c: v for c, v in minimums if c in listed}
    return merged


def parse_rules(text: str, shipped: str, source: str = DEFAULT_RULES_NAME) -> RuleSettings:
    """Parse the text of a rules TOML file into settings, each setting it leaves out the
    shipped file's (`shipped`: the text of the packaged rules.toml), or raise RulesError naming
    the setting.

    Numbers with a point are read as exact Decimals, so no amount passes through a float.
    """
    data = _toml(text, source)
    try:
        return RuleSettings.model_validate(with_shipped(data, _toml(shipped, DEFAULT_RULES_NAME)))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        given = first.get("input")
        if first["type"] != "value_error" and not isinstance(given, dict | list):
            message += f", not {given!r}"  # say what was given: "15" (text), True (a bool)
        raise RulesError(f"rules file {source}: setting {where}: {message}") from None


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"rules file {source} is not valid TOML: {exc}") from None
