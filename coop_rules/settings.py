"""Rule settings (SPEC section 4), parsed from the text of a rules TOML file."""

from __future__ import annotations

import tomllib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_RULES_NAME = "rules.toml"


class Statuses(BaseModel):
    """The plan statuses by what they mean for a payout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approved: tuple[str, ...]
    held: tuple[str, ...]
    rejected: tuple[str, ...]
    unsubmitted: tuple[str, ...] = ("Editing",)

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
    """Everything a run's rules depend on besides the input data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    payment_day: int = Field(ge=1, le=28)
    resubmission_grace_days: int = Field(ge=0)
    cap_basis: Literal["cumulative", "monthly"]
    statuses: Statuses
    currencies: dict[str, int]

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


class RulesError(ValueError):
    """The rules file cannot be used; the message is one sentence for a person."""


def parse_rules(text: str, source: str = DEFAULT_RULES_NAME) -> RuleSettings:
    """Parse the text of a rules TOML file into settings, or raise RulesError naming the setting."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"rules file {source} is not valid TOML: {exc}") from None
    try:
        return RuleSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise RulesError(f"rules file {source}: setting {where}: {first['msg']}") from None
