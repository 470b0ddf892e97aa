"""Rule settings parsed from the rules TOML text (docs/payouts.md, docs/payments.md)."""

from __future__ import annotations

import ast
import tomllib
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

import pytest

from coop_rules.settings import RulesError, parse_rules
from flows import rules

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
    rules = parse_rules(SHIPPED, SHIPPED)
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
    assert rules.hold_days == 180
    assert rules.minimum_payment == {
        **dict.fromkeys(("USD", "EUR", "GBP", "CAD", "AUD"), Decimal(200)),
        "JPY": Decimal(30000),
    }


def test_the_defaults_are_the_shipped_file() -> None:
    """A setting a rules file leaves out gets the shipped value: an empty file is the shipped
    file."""
    assert parse_rules("", SHIPPED) == parse_rules(SHIPPED, SHIPPED)


def test_the_shipped_values_are_read_from_the_shipped_file_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """rules.toml is the one source: a setting left out follows the packaged file, which the
    flows read and pass to the rules (coop_rules reads no file)."""
    changed = SHIPPED.replace("payment_day = 15", "payment_day = 20").replace(
        "hold_days = 180", "hold_days = 90"
    )
    assert parse_rules('cap_basis = "monthly"', changed).payment_day == 20
    mine = tmp_path / "mine.toml"
    mine.write_text('cap_basis = "monthly"\n', encoding="utf-8")
    monkeypatch.setattr(rules, "shipped_rules_text", lambda: changed)
    settings = rules.load_rules(mine).settings
    assert (settings.payment_day, settings.hold_days, settings.cap_basis) == (20, 90, "monthly")


def test_the_rules_package_reads_no_file() -> None:
    """coop_rules holds pure rules: no open(), read_text(), read_bytes() or package-data
    lookup in it (the rules file is read in flows/rules.py)."""
    root = Path(__file__).resolve().parents[2] / "coop_rules"
    reads = {"open", "read_text", "read_bytes", "files", "read_csv", "read_parquet"}
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", None))
                if name in reads:
                    found.append(f"{path.name}:{node.lineno} {name}()")
    assert found == []


def test_the_shipped_rules_file_is_package_data() -> None:
    """An installed wheel carries rules.toml, which the shipped values are read from."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    assert "rules.toml" in project["tool"]["setuptools"]["package-data"]["coop_rules"]


def test_a_replacement_file_of_the_same_form() -> None:
    rules = parse_rules(MINIMAL.replace('"cumulative"', '"monthly"'), SHIPPED, source="mine.toml")
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
    pytest.param(MINIMAL + "KWD = 3\n", "currencies", id="currency-with-3-minor-digits"),
    pytest.param(MINIMAL + "usd = 2\n", "currencies", id="currency-not-ISO-4217"),
    pytest.param(MINIMAL.replace('rejected = ["Rejected"]', 'rejected = ["Rejected", "Approved"]'),
                 "statuses", id="status-in-two-sets"),
    pytest.param(MINIMAL + "\n[extra]\nx = 1\n", "extra", id="unknown-setting"),
    pytest.param("payment_day = ", "not valid TOML", id="not-TOML"),
    # Strict types: never a bool or text read as a number, nor a float as an integer.
    pytest.param("payment_day = true", "payment_day", id="payment_day-bool"),
    pytest.param('payment_day = "15"', "payment_day", id="payment_day-text"),
    pytest.param("payment_day = 15.0", "payment_day", id="payment_day-float"),
    pytest.param('resubmission_grace_days = "90"', "resubmission_grace_days",
                 id="resubmission_grace_days-text"),
    pytest.param("resubmission_grace_days = false", "resubmission_grace_days",
                 id="resubmission_grace_days-bool"),
    pytest.param("hold_days = true", "hold_days", id="hold_days-bool"),
    pytest.param('hold_days = "180"', "hold_days", id="hold_days-text"),
    pytest.param("hold_days = 180.5", "hold_days", id="hold_days-float"),
    pytest.param("hold_days = -1", "hold_days", id="hold_days-negative"),
    pytest.param("hold_days = 1000000000", "hold_days", id="hold_days-beyond-a-century"),
    pytest.param("resubmission_grace_days = 1000000000000", "resubmission_grace_days",
                 id="resubmission_grace_days-beyond-a-century"),
    pytest.param("cap_basis = 1", "cap_basis", id="cap_basis-number"),
    pytest.param(MINIMAL.replace("USD = 2", "USD = true"), "currencies.USD",
                 id="currencies-digits-bool"),
    pytest.param(MINIMAL.replace("USD = 2", 'USD = "2"'), "currencies.USD",
                 id="currencies-digits-text"),
    pytest.param(MINIMAL.replace('["Rejected"]', '["Rejected", 1]'), "statuses.rejected",
                 id="statuses-a-number"),
    pytest.param("[statuses]\napproved = []", "statuses.held", id="statuses-a-set-missing"),
    pytest.param("payment_day = 15\n[currencies]\nUSD = 2\n[minimum_payment]\nJPY = 1",
                 "minimum_payment", id="minimum_payment-currency-not-in-currencies"),
    pytest.param("[minimum_payment]\nXYZ = 1", "minimum_payment",
                 id="minimum_payment-currency-unknown"),
    pytest.param("[minimum_payment]\nUSD = -0.01", "minimum_payment",
                 id="minimum_payment-negative"),
    pytest.param("[minimum_payment]\nUSD = 200.001", "minimum_payment",
                 id="minimum_payment-more-decimals-than-USD"),
    pytest.param("[minimum_payment]\nJPY = 30000.5", "minimum_payment",
                 id="minimum_payment-decimals-for-JPY"),
    pytest.param("[minimum_payment]\nUSD = 12345678901234567", "minimum_payment",
                 id="minimum_payment-beyond-Decimal(18,2)"),
    pytest.param('[minimum_payment]\nUSD = "200"', "minimum_payment",
                 id="minimum_payment-text"),
    pytest.param("[minimum_payment]\nUSD = true", "minimum_payment",
                 id="minimum_payment-bool"),
    pytest.param("[minimum_payment]\nUSD = nan", "minimum_payment", id="minimum_payment-nan"),
    pytest.param("[minimum_payment]\nUSD = inf", "minimum_payment", id="minimum_payment-inf"),
    pytest.param("minimum_payment = 200", "minimum_payment", id="minimum_payment-not-a-table"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "named"), BAD_RULES)
def test_bad_rules_name_the_setting(text: str, named: str) -> None:
    with pytest.raises(RulesError) as raised:
        parse_rules(text, SHIPPED, source="mine.toml")
    message = str(raised.value)
    assert "mine.toml" in message
    assert named in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("USD = 200.10", Decimal("200.10"), id="decimal-kept-exactly"),
        pytest.param("USD = 0.1", Decimal("0.1"), id="no-binary-float"),
        pytest.param("USD = 200", Decimal("200"), id="integer-as-Decimal"),
        pytest.param("USD = 0", Decimal("0"), id="zero"),
        pytest.param("USD = 2e2", Decimal("2e2"), id="exponent-without-decimals"),
    ],
)
def test_minimum_payment_is_read_exactly(text: str, expected: Decimal) -> None:
    minimum = parse_rules(f"[minimum_payment]\n{text}\n", SHIPPED).minimum_payment["USD"]
    assert isinstance(minimum, Decimal)
    assert (minimum, str(minimum)) == (expected, str(expected))


def test_a_file_that_leaves_settings_out_gets_the_shipped_values() -> None:
    rules = parse_rules("payment_day = 10\n[minimum_payment]\nUSD = 50\n", SHIPPED)
    shipped = parse_rules(SHIPPED, SHIPPED)
    assert rules.payment_day == 10
    assert rules.minimum_payment == {"USD": Decimal(50)}  # a table given replaces the shipped
    assert rules.model_dump(exclude={"payment_day", "minimum_payment"}) == shipped.model_dump(
        exclude={"payment_day", "minimum_payment"}
    )


def test_an_own_currency_table_keeps_the_shipped_minimums_of_its_currencies() -> None:
    rules = parse_rules(MINIMAL, SHIPPED)
    assert rules.minimum_payment == {"USD": Decimal(200), "JPY": Decimal(30000)}
    assert rules.hold_days == 180


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        pytest.param("USD", Decimal(200), id="USD-200"),
        pytest.param("JPY", Decimal(30000), id="JPY-30000"),
        pytest.param("CHF", Decimal(0), id="unlisted-currency-0"),
    ],
)
def test_minimum_of_a_currency(currency: str, expected: Decimal) -> None:
    """A currency the rules do not list has no minimum (docs/payments.md)."""
    assert parse_rules(SHIPPED, SHIPPED).minimum_payment.get(currency, Decimal(0)) == expected
