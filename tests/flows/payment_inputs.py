"""A tiny input folder for the payment tests: three accounts over four months of FY26.

    USD   partner 4412907, plan CP26-0001 (limit 1000.00), enrolled
    JPY   partner 1093384, plan CP26-0002 (limit 5000000), enrolled
    HELD  partner 5550001, plan CP26-0003 (USD), profile `Action required` since 2025-09-20

With the shipped `hold_days` (180) the held partner's hold ends 2026-03-19: the batches of
January and February (paid 2026-02-15 and 2026-03-15) are `HELD_PROFILE`, those of March and
April (paid 2026-04-15 and 2026-05-15) `FORFEITED`. Rows are made with `tests/coop_rules/
builders.py` and written as CSV, one earning per account and month.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tests.coop_rules import builders as b


@dataclass(frozen=True)
class Account:
    key: str
    plan_id: str
    mpn_id: str
    currency: str
    limit: str


ACCOUNTS = (
    Account("USD", "CP26-0001", "4412907", "USD", "1000.00"),
    Account("JPY", "CP26-0002", "1093384", "JPY", "5000000"),
    Account("HELD", "CP26-0003", "5550001", "USD", "100000.00"),
)
MONTHS = ("2026-01", "2026-02", "2026-03", "2026-04")
HELD_SINCE = "2025-09-20"

Amounts = dict[tuple[str, str], str]


def earning_id(account: Account, month: str) -> str:
    return f"E-{account.key}-{month}"


def write_csv(path: Path, rows: list[b.Row]) -> None:
    pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String)).write_csv(path)


def write_inputs(folder: Path, amounts: Amounts, profiles: list[b.Row] | None = None) -> Path:
    """The input folder, with `amounts[(account key, month)]` as each earning's amount (a
    pair not given has no earning); `profiles` defaults to the two enrolled partners and the
    held one."""
    folder.mkdir(parents=True, exist_ok=True)
    by_key = {account.key: account for account in ACCOUNTS}
    plans = [
        b.plan(
            plan_id=a.plan_id,
            mpn_id=a.mpn_id,
            currency=a.currency,
            market="Japan" if a.currency == "JPY" else "United States",
        )
        for a in ACCOUNTS
    ]
    write_csv(folder / "programs.csv", [b.program()])
    write_csv(folder / "plans.csv", plans)
    write_csv(
        folder / "plan_limits.csv",
        [b.limit(plan_id=a.plan_id, limit_amount=a.limit) for a in ACCOUNTS],
    )
    write_earnings(folder, amounts)
    if profiles is None:
        profiles = [
            b.payment_profile(mpn_id=by_key["USD"].mpn_id),
            b.payment_profile(mpn_id=by_key["JPY"].mpn_id),
            b.payment_profile(
                mpn_id=by_key["HELD"].mpn_id,
                profile_status="Action required",
                action_required_since=HELD_SINCE,
            ),
        ]
    write_csv(folder / "payment_profiles.csv", profiles)
    return folder


def write_earnings(folder: Path, amounts: Amounts) -> None:
    """earnings.csv of the input folder, rewritten in place."""
    by_key = {account.key: account for account in ACCOUNTS}
    rows = [
        b.earning(
            earning_id=earning_id(by_key[key], month),
            mpn_id=by_key[key].mpn_id,
            earning_month=month,
            amount=amount,
            currency=by_key[key].currency,
        )
        for (key, month), amount in sorted(amounts.items())
    ]
    write_csv(folder / "earnings.csv", rows)
