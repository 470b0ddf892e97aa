"""Rule settings parsed from the rules TOML text (SPEC section 4)."""

from __future__ import annotations

from importlib.resources import files

import pytest

from coop_rules.settings import RulesError, parse_rules

SHIPPED = files("coop_rules").joinpath("rules.toml").read_text(encoding="utf-8")

MINIMAL = """
payment_day = 15
resubmission_grace_days = 90
cap_basis = "cumulative"

[statuses]
approved = ["Approved"]
held = ["Submitted", "Under review", "Action required", "Editing"]
rejected = ["Rejected"]

[currencies]
USD = 2
JPY = 0
"""


def test_shipped_rules_hold_the_spec_defaults() -> None:
    rules = parse_rules(SHIPPED)
    assert rules.payment_day == 15
    assert rules.resubmission_grace_days == 90
    assert rules.cap_basis == "cumulative"
    assert rules.statuses.approved == ("Approved",)
    assert set(rules.statuses.held) == {"Submitted", "Under review", "Action required", "Editing"}
    assert rules.statuses.rejected == ("Rejected",)
    assert rules.statuses.unsubmitted == ("Editing",)
    assert {code: rules.currencies[code] for code in ("USD", "EUR", "GBP", "JPY")} == {
        "USD": 2,
        "EUR": 2,
        "GBP": 2,
        "JPY": 0,
    }
    assert all(0 <= digits <= 2 for digits in rules.currencies.values())


def test_a_replacement_file_of_the_same_form() -> None:
    rules = parse_rules(MINIMAL.replace('"cumulative"', '"monthly"'), source="mine.toml")
    assert rules.cap_basis == "monthly"
    assert rules.currencies == {"USD": 2, "JPY": 0}
    assert rules.statuses.unsubmitted == ("Editing",)


BAD_RULES = [
    pytest.param(MINIMAL.replace('"cumulative"', '"weekly"'), "cap_basis", id="cap_basis-unknown"),
    pytest.param(MINIMAL.replace("payment_day = 15", "payment_day = 0"), "payment_day",
                 id="payment_day-0"),
    pytest.param(MINIMAL.replace("payment_day = 15", "payment_day = 31"), "payment_day",
                 id="payment_day-not-in-every-month"),
    pytest.param(MINIMAL.replace("= 90", "= -1"), "resubmission_grace_days",
                 id="resubmission_grace_days-negative"),
    pytest.param(MINIMAL.replace("payment_day = 15\n", ""), "payment_day",
                 id="payment_day-missing"),
    pytest.param(MINIMAL + "KWD = 3\n", "currencies", id="currency-with-3-minor-digits"),
    pytest.param(MINIMAL + "usd = 2\n", "currencies", id="currency-not-ISO-4217"),
    pytest.param(MINIMAL.replace('rejected = ["Rejected"]', 'rejected = ["Rejected", "Approved"]'),
                 "statuses", id="status-in-two-sets"),
    pytest.param(MINIMAL + "\n[extra]\nx = 1\n", "extra", id="unknown-setting"),
    pytest.param("payment_day = ", "not valid TOML", id="not-TOML"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "named"), BAD_RULES)
def test_bad_rules_name_the_setting(text: str, named: str) -> None:
    with pytest.raises(RulesError) as raised:
        parse_rules(text, source="mine.toml")
    message = str(raised.value)
    assert "mine.toml" in message
    assert named in message
    assert "\n" not in message
