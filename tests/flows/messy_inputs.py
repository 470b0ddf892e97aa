"""Small input folders for the messy-input tests: a minimal valid month, the sample, and a run.

The minimal set pays one plan (PL-1, USD, limit 10000.00) from one April earnings row and has a
JPY plan (PL-2) for currency cases. A test replaces one file, or some rows, and runs the month.
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from coop_rules.vocabulary import Dataset
from flows.month import RunOptions, RunOutcome
from flows.run import run_month
from schemas.inputs import INPUTS

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
MONTH = "2026-04"

PROGRAM = ("Azure Co-op", "FY26", "2025-07-01", "2026-06-30")
PLAN_USD = (
    "PL-1",
    "4412907",
    "Azure Co-op",
    "Marketing",
    "FY26",
    "United States",
    "USD",
    "megan@example.com",
    "Approved",
    "2025-07-14",
    "2025-07-21",
    "2025-07-21",
)
PLAN_JPY = (
    "PL-2",
    "7781200",
    "Azure Co-op",
    "Marketing",
    "FY26",
    "Japan",
    "JPY",
    "kenji@example.com",
    "Approved",
    "2025-08-04",
    "2025-08-12",
    "2025-08-12",
)
LIMITS = (("PL-1", "2025-07", "10000.00"), ("PL-2", "2025-08", "3000000"))


def earning(
    earning_id: str = "E-1",
    amount: str = "1000.00",
    *,
    currency: str = "USD",
    month: str = MONTH,
    mpn_id: str | None = None,
    program: str = "Azure Co-op",
) -> tuple[str, ...]:
    """One earnings row for PL-1 (or PL-2 when the currency is JPY)."""
    partner = mpn_id or (PLAN_JPY[1] if currency == "JPY" else PLAN_USD[1])
    return (earning_id, partner, program, "Marketing", month, amount, currency)


def csv_text(dataset: Dataset, rows: list[tuple[str, ...]], header: list[str] | None = None) -> str:
    """A CSV file of `rows` under the dataset's header, quoted where a value needs it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header or list(INPUTS[dataset].columns))
    writer.writerows(rows)
    return buffer.getvalue()


def minimal_files(
    earnings: list[tuple[str, ...]] | None = None,
) -> dict[str, str | bytes]:
    """File name -> content of a minimal valid input set; the plans' partners are enrolled."""
    partners = sorted({PLAN_USD[1], PLAN_JPY[1]})
    return {
        "programs.csv": csv_text(Dataset.PROGRAMS, [PROGRAM]),
        "plans.csv": csv_text(Dataset.PLANS, [PLAN_USD, PLAN_JPY]),
        "plan_limits.csv": csv_text(Dataset.PLAN_LIMITS, list(LIMITS)),
        "earnings.csv": csv_text(Dataset.EARNINGS, earnings or [earning()]),
        "payment_profiles.csv": csv_text(
            Dataset.PAYMENT_PROFILES, [(mpn, "Enrolled", "") for mpn in partners]
        ),
    }


def write_folder(folder: Path, files: dict[str, str | bytes]) -> Path:
    """Write `files` (name -> text or bytes) into a new folder."""
    folder.mkdir(parents=True)
    for name, content in files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))
    return folder


def copy_sample(folder: Path) -> Path:
    """A copy of data/sample to change."""
    shutil.copytree(SAMPLE, folder)
    return folder


@dataclass(frozen=True)
class Published:
    """What one run published: its payout and exception rows, and the manifest."""

    outcome: RunOutcome
    payouts: pl.DataFrame
    exceptions: pl.DataFrame

    @property
    def reconciliation(self) -> dict:
        return self.outcome.manifest.reconciliation

    def exceptions_of(self, source: str) -> pl.DataFrame:
        return self.exceptions.filter(pl.col("source") == source).sort(
            "row_number", "code", "column", nulls_last=True
        )


def run(
    input_dir: Path, output_dir: Path, month: str = MONTH, allow_empty: bool = False
) -> Published:
    """Run one month with the shipped rules, without Prefect, and read what it published."""
    outcome = run_month(
        RunOptions(month=month, input_dir=input_dir, output_dir=output_dir, allow_empty=allow_empty)
    )
    assert outcome.status == "published"
    assert outcome.run_dir is not None
    return Published(
        outcome,
        pl.read_parquet(outcome.run_dir / "payouts.parquet"),
        pl.read_parquet(outcome.run_dir / "exceptions.parquet"),
    )


def nothing_published(output_dir: Path) -> bool:
    """True when a run left no published data and no run folder behind."""
    published = [output_dir / "payouts", output_dir / "exceptions"]
    runs = output_dir / "runs"
    return not any(p.exists() for p in published) and (not runs.exists() or not any(runs.iterdir()))
