"""Re-running a month (docs/reruns.md): unchanged, refused, replaced with a reason, the lock."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from flows.errors import Refused
from flows.folder import OutputFolder, read_registry, run_lock
from flows.month import RunOptions
from flows.run import run_month
from tests.flows.corrections import correct_earning

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    shutil.copytree(SAMPLE, folder)
    return folder


def _run(inputs: Path, out: Path, month: str = "2026-04", reason: str | None = None):
    return run_month(RunOptions(month=month, input_dir=inputs, output_dir=out, reason=reason))


def test_identical_rerun_is_unchanged_and_writes_no_run(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _run(inputs, out)
    second = _run(inputs, out)
    assert first.status == "published"
    assert second.status == "unchanged"
    assert second.run_id == first.run_id
    assert first.run_id in second.message
    assert [p.name for p in (out / "runs").iterdir()] == [first.run_id]


def test_changed_rerun_without_reason_is_refused(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _run(inputs, out)
    correct_earning(inputs)
    with pytest.raises(Refused, match="--reason") as refused:
        _run(inputs, out)
    assert refused.value.exit_code == 4
    assert [p.name for p in (out / "runs").iterdir()] == [first.run_id]
    assert read_registry(OutputFolder(out))["2026-04"].run_id == first.run_id


def test_changed_rerun_with_reason_supersedes_and_lists_changes(
    inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = _run(inputs, out)
    correct_earning(inputs)
    second = _run(inputs, out, reason="earnings corrected by the partner team")
    assert second.status == "published"
    manifest = json.loads((second.run_dir / "manifest.json").read_text())
    assert manifest["supersedes"] == first.run_id
    assert manifest["reason"] == "earnings corrected by the partner team"
    # Only the plans that changed, with both runs, the month and every difference.
    changes = pl.read_parquet(second.run_dir / "changes.parquet")
    assert changes.get_column("plan_id").to_list() == ["CP26-0001"]
    row = changes.row(0, named=True)
    assert row["previous_outcome"] == "PAY"
    assert (row["earning_month"], row["previous_run_id"], row["run_id"]) == (
        "2026-04",
        first.run_id,
        second.run_id,
    )
    assert row["payable_difference"] == row["new_payable_amount"] - row["previous_payable_amount"]
    assert row["earned_difference"] == row["new_earned_amount"] - row["previous_earned_amount"]
    assert manifest["changes"]["plans"] == 1
    assert "changed against run" in second.message
    # The first run stays in runs/, untouched; the published month is the new run's.
    assert (first.run_dir / "manifest.json").is_file()
    published = pl.scan_parquet(out / "payouts").collect()
    assert published.get_column("run_id").unique().to_list() == [second.run_id]


def test_replacing_an_earlier_month_names_the_later_months(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for month in ("2026-02", "2026-03", "2026-04"):
        _run(inputs, out, month)
    path = inputs / "earnings.csv"
    frame = pl.read_csv(path, infer_schema=False)
    feb_id = frame.filter(pl.col("earning_month") == "2026-02").row(0, named=True)["earning_id"]
    frame.filter(pl.col("earning_id") != feb_id).write_csv(path)
    rerun = _run(inputs, out, "2026-02", reason="a February earning was booked twice")
    assert rerun.manifest.later_months_to_rerun == ["2026-03", "2026-04"]
    assert "2026-03, 2026-04" in rerun.message
    # The earnings file changed, so March needs a reason too (as backfill passes it on).
    with pytest.raises(Refused):
        _run(inputs, out, "2026-03")
    march = _run(inputs, out, "2026-03", reason="February corrected")
    assert march.status == "published"
    assert march.manifest.paid_before_basis == {"2026-02": rerun.run_id}


def test_a_republished_earlier_month_alone_needs_no_reason(inputs: Path, tmp_path: Path) -> None:
    """Same inputs and rules, but the paid_before basis moved: a rerun, not an input change."""
    out = tmp_path / "out"
    _run(inputs, out, "2026-03")
    _run(inputs, out, "2026-04")
    # March is republished by a later run over the same inputs (e.g. other rules, then back).
    rules = tmp_path / "rules.toml"
    default = (Path(__file__).resolve().parents[2] / "coop_rules" / "rules.toml").read_text()
    rules.write_text(default.replace('cap_basis = "cumulative"', 'cap_basis = "monthly"'))
    run_month(
        RunOptions(
            month="2026-03",
            input_dir=inputs,
            output_dir=out,
            rules_path=rules,
            reason="monthly cap trial",
        )
    )
    april = _run(inputs, out, "2026-04")
    assert april.status == "published"
    assert april.manifest.reason == "an earlier month changed"


def test_a_second_run_is_refused_while_the_lock_is_held(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    folder = OutputFolder(out)
    with run_lock(folder), pytest.raises(Refused, match="holds the lock"):
        _run(inputs, out)
    assert _run(inputs, out).status == "published"


def test_a_lock_left_by_a_killed_process_does_not_block(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    OutputFolder(out).prepare()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"h = open({str(out / '.coop' / 'lock')!r}, 'a')\n"
            "fcntl.flock(h.fileno(), fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    with pytest.raises(Refused):
        _run(inputs, out)
    holder.kill()
    holder.wait()
    assert _run(inputs, out).status == "published"
    handle = (out / ".coop" / "lock").open("a")
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again after the run
    handle.close()


def test_a_check_of_changed_inputs_gives_the_true_reason(inputs: Path, tmp_path: Path) -> None:
    """A bug: `check` said "reason: an earlier month changed" after only an input changed."""
    out = tmp_path / "out"
    _run(inputs, out)
    correct_earning(inputs)
    checked = run_month(RunOptions(month="2026-04", input_dir=inputs, output_dir=out, dry_run=True))
    assert checked.manifest.reason == "the inputs or rules changed (a run needs --reason)"
