"""Months published out of order, and months with no earnings (docs/reruns.md, "Safety guarantees").

Reproduces two holes found by trying to break the run: publishing April, then February, then
March paid a plan 8000 + 9000 + 6000 against a 20000 cumulative limit and named nothing to
rerun; and a month whose earnings had not arrived was published empty.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from flows.errors import InputRejected
from flows.month import RunOptions
from flows.run import run_month
from tests.coop_rules import builders as b


def write_inputs(folder: Path, earnings: list[b.Row]) -> Path:
    return b.write_folder(
        folder,
        {
            "programs": [b.program()],
            "plans": [b.plan()],
            "plan_limits": [b.limit(limit_amount="20000.00")],
            "earnings": earnings,
        },
    )


def run(inputs: Path, out: Path, month: str, **options: object):
    return run_month(RunOptions(month=month, input_dir=inputs, output_dir=out, **options))


def payable(outcome) -> Decimal:
    return pl.read_parquet(outcome.run_dir / "payouts.parquet").item(0, "payable_amount")


def test_months_published_out_of_order_name_the_later_months_and_never_exceed_the_limit(
    tmp_path: Path,
) -> None:
    inputs = write_inputs(
        tmp_path / "in",
        [
            b.earning(earning_id="E-02", earning_month="2026-02", amount="9000.00"),
            b.earning(earning_id="E-03", earning_month="2026-03", amount="6000.00"),
            b.earning(earning_id="E-04", earning_month="2026-04", amount="8000.00"),
        ],
    )
    out = tmp_path / "out"
    april = run(inputs, out, "2026-04")
    assert payable(april) == Decimal("8000.00")
    february = run(inputs, out, "2026-02")
    assert february.manifest.later_months_to_rerun == ["2026-04"]
    assert "2026-04" in february.message
    march = run(inputs, out, "2026-03")
    assert march.manifest.later_months_to_rerun == ["2026-04"]
    assert payable(march) == Decimal("6000.00")
    # April rests on February and March now: rerun on the same files, it needs no --reason.
    rerun = run(inputs, out, "2026-04")
    assert rerun.status == "published"
    assert rerun.manifest.reason == "an earlier month changed"
    assert rerun.manifest.supersedes == april.run_id
    assert payable(rerun) == Decimal("5000.00")
    published = pl.scan_parquet(out / "payouts").collect()
    assert published.get_column("payable_amount").sum() == Decimal("20000.00")
    # And once settled, the same rerun is unchanged.
    assert run(inputs, out, "2026-04").status == "unchanged"


def test_a_month_without_earnings_is_refused_unless_allowed(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in", [b.earning(earning_month="2026-04")])
    out = tmp_path / "out"
    with pytest.raises(InputRejected, match=r"earnings\.csv holds no earnings rows of 2026-05"):
        run(inputs, out, "2026-05")
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())
    assert not (out / "payouts").exists()
    empty = run(inputs, out, "2026-05", allow_empty=True)
    assert empty.status == "published"
    assert pl.read_parquet(empty.run_dir / "payouts.parquet").height == 0
