"""The benchmark's two DuckDB cores on tiny months: what each pays, and where they differ."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from duckdb_core import duckdb_core

MONTH = "2026-04"
PROGRAMS = "program,period,period_start,period_end\nAZURE,FY26,2025-07-01,2026-06-30\n"
PLAN_HEADER = (
    "plan_id,mpn_id,program,fund,period,market,currency,reviewer_email,status,"
    "created_on,first_submitted_on,last_submitted_on\n"
)
EARNING_HEADER = "earning_id,mpn_id,program,fund,earning_month,amount,currency\n"


def _plan(plan_id: str, status: str = "Approved", currency: str = "USD") -> str:
    mpn = {"P1": "1000001", "P2": "1000002"}[plan_id]
    return (
        f"{plan_id},{mpn},AZURE,MDF,FY26,United States,{currency},a@example.com,{status},"
        "2025-08-01,2025-08-02,2025-08-03\n"
    )


def _earning(earning_id: str, amount: str, mpn: str = "1000001", month: str = MONTH) -> str:
    return f"{earning_id},{mpn},AZURE,MDF,{month},{amount},USD\n"


def _write_month(folder: Path, plans: str, limits: str, earnings: str) -> Path:
    folder.mkdir()
    (folder / "programs.csv").write_text(PROGRAMS)
    (folder / "plans.csv").write_text(PLAN_HEADER + plans)
    (folder / "plan_limits.csv").write_text("plan_id,effective_month,limit_amount\n" + limits)
    (folder / "earnings.csv").write_text(EARNING_HEADER + earnings)
    return folder


# (plans, limits, earnings, payable per plan by the full core, by the bare core)
CASES = {
    "cap-limit-in-force": (
        _plan("P1"),
        "P1,2026-01,10000\n",
        _earning("E1", "15000.00"),
        {"P1": "10000.00"},
        {"P1": "10000.00"},
    ),
    "cap-latest-raise-before-month": (
        _plan("P1"),
        "P1,2026-01,100\nP1,2026-03,300\nP1,2026-05,900\n",
        _earning("E1", "250.00") + _earning("E2", "100.00"),
        {"P1": "300.00"},
        {"P1": "300.00"},
    ),
    "negative-net-pays-zero": (
        _plan("P1"),
        "P1,2026-01,100\n",
        _earning("E1", "-5.00"),
        {"P1": "0.00"},
        {"P1": "0.00"},
    ),
    "status-not-approved-unpaid": (
        _plan("P1", status="Submitted"),
        "P1,2026-01,100\n",
        _earning("E1", "5.00"),
        {},
        {},
    ),
    "no-limit-in-force-unpaid": (
        _plan("P1"),
        "P1,2026-05,100\n",
        _earning("E1", "5.00"),
        {},
        {},
    ),
    "other-month-out-of-scope": (
        _plan("P1"),
        "P1,2026-01,100\n",
        _earning("E1", "5.00") + _earning("E2", "7.00", month="2026-03"),
        {"P1": "5.00"},
        {"P1": "5.00"},
    ),
    "routing-by-mpn-id": (
        _plan("P1") + _plan("P2"),
        "P1,2026-01,100\nP2,2026-01,100\n",
        _earning("E1", "5.00") + _earning("E2", "7.00", mpn="1000002"),
        {"P1": "5.00", "P2": "7.00"},
        {"P1": "5.00", "P2": "7.00"},
    ),
    "currency-mismatch-not-summed": (
        _plan("P1", currency="EUR"),
        "P1,2026-01,100\n",
        _earning("E1", "5.00"),
        {},
        {},
    ),
    # Where the bare core differs, by design: no duplicate ids, no validation.
    "duplicate-id-bare-keeps-both": (
        _plan("P1"),
        "P1,2026-01,100\n",
        _earning("E1", "5.00") + _earning("E1", "7.00") + _earning("E2", "1.00"),
        {"P1": "1.00"},
        {"P1": "13.00"},
    ),
    "too-many-decimals-bare-rounds": (
        _plan("P1"),
        "P1,2026-01,100\n",
        _earning("E1", "5.005") + _earning("E2", "1.00"),
        {"P1": "1.00"},
        {"P1": "6.01"},
    ),
}


@pytest.mark.parametrize(
    ("plans", "limits", "earnings", "full", "bare"), list(CASES.values()), ids=list(CASES)
)
def test_cores_pay(
    tmp_path: Path,
    plans: str,
    limits: str,
    earnings: str,
    full: dict[str, str],
    bare: dict[str, str],
) -> None:
    month = _write_month(tmp_path / "in", plans, limits, earnings)
    for is_bare, expected in ((False, full), (True, bare)):
        out = tmp_path / f"out-{is_bare}.parquet"
        duckdb_core(month, MONTH, out, threads=1, bare=is_bare)
        paid = pl.read_parquet(out).select("plan_id", "payable_amount").rows()
        assert dict(paid) == {plan: Decimal(amount) for plan, amount in expected.items()}, (
            "bare" if is_bare else "full"
        )
