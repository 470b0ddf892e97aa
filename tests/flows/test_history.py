"""`coop-payouts history` keeps what was paid (docs/payments.md, "Approval in Prefect, and
history"): a month rerun after its release still shows its released batch, by whom, when and
which run, and that the rerun's difference goes to the next batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.batches import batch_states
from flows.cli import app
from flows.folder import OutputFolder
from flows.month import RunOptions, RunOutcome
from flows.records import ReleaseRecord
from flows.run import run_month
from tests.coop_rules import builders as b
from tests.flows.corrections import correct_earning
from tests.flows.releasing import release

MONTH = "2026-03"
APPROVER = "Megan Bowen"


pytestmark = pytest.mark.usefixtures("no_prefect")


def run(inputs: Path, out: Path, month: str, reason: str | None = None) -> RunOutcome:
    return run_month(RunOptions(month=month, input_dir=inputs, output_dir=out, reason=reason))


@pytest.fixture
def rerun_after_release(tmp_path: Path) -> tuple[Path, RunOutcome, RunOutcome, ReleaseRecord]:
    """March paid 500.00 and released, then rerun with its earning corrected to 400.00."""
    inputs = b.write_folder(
        tmp_path / "in",
        {
            "programs": [b.program()],
            "plans": [b.plan()],
            "plan_limits": [b.limit()],
            "earnings": [b.earning(earning_id="E-03", earning_month=MONTH, amount="500.00")],
            "payment_profiles": [b.payment_profile()],
        },
    )
    out = tmp_path / "out"
    first = run(inputs, out, MONTH)
    released = release(out, MONTH, APPROVER).release
    correct_earning(inputs, "E-03", "400.00")
    rerun = run(inputs, out, MONTH, reason="March earning corrected")
    return out, first, rerun, released


def history(out: Path, *options: str) -> str:
    result = CliRunner().invoke(
        app, ["history", "--output", str(out), *options], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_batch_state_keeps_the_release_of_a_month_rerun_after_it(
    rerun_after_release: tuple[Path, RunOutcome, RunOutcome, ReleaseRecord],
) -> None:
    out, first, rerun, released = rerun_after_release
    state = batch_states(OutputFolder(out))[MONTH]
    assert (state.run_id, state.state) == (rerun.run_id, "none")
    assert (state.released_by, state.released_at, state.released_run) == (
        APPROVER,
        released.released_at,
        first.run_id,
    )
    assert state.difference_to_next_batch


def test_history_json_shows_who_released_the_batch_of_a_rerun_month(
    rerun_after_release: tuple[Path, RunOutcome, RunOutcome, ReleaseRecord],
) -> None:
    out, first, rerun, released = rerun_after_release
    rows = {row["run_id"]: row for row in json.loads(history(out, "--json"))}
    assert rerun.manifest is not None and first.manifest is not None
    release_text = f"released by {APPROVER} at {released.released_at} (run {first.run_id})"
    published = rows[rerun.run_id]
    # Every key, in the order history --json has always printed them.
    assert list(published.items()) == [
        ("month", MONTH),
        ("run_id", rerun.run_id),
        ("published", True),
        ("started_at", rerun.manifest.started_at),
        ("supersedes", first.run_id),
        ("reason", "March earning corrected"),
        ("batch", f"{release_text}; difference to the next batch"),
        ("released_by", APPROVER),
        ("released_at", released.released_at),
        ("released_run", first.run_id),
        ("difference_to_next_batch", True),
    ]
    # The run whose batch was paid says so too, though it no longer publishes the month.
    paid = rows[first.run_id]
    assert paid == {
        "month": MONTH,
        "run_id": first.run_id,
        "published": False,
        "started_at": first.manifest.started_at,
        "supersedes": None,
        "reason": None,
        "batch": release_text,
        "released_by": APPROVER,
        "released_at": released.released_at,
        "released_run": first.run_id,
        "difference_to_next_batch": False,
    }


def test_history_table_shows_the_release_and_the_difference_to_the_next_batch(
    rerun_after_release: tuple[Path, RunOutcome, RunOutcome, ReleaseRecord],
) -> None:
    out, first, rerun, released = rerun_after_release
    (line,) = [line for line in history(out).splitlines() if rerun.run_id in line]
    release_text = f"released by {APPROVER} at {released.released_at} (run {first.run_id})"
    assert f"{release_text}; difference to the next batch" in line
    assert " none" not in line


def test_history_of_a_released_month_names_the_run(tmp_path: Path) -> None:
    inputs = b.write_folder(
        tmp_path / "in",
        {
            "programs": [b.program()],
            "plans": [b.plan()],
            "plan_limits": [b.limit()],
            "earnings": [b.earning(earning_id="E-03", earning_month=MONTH, amount="500.00")],
            "payment_profiles": [b.payment_profile()],
        },
    )
    out = tmp_path / "out"
    first = run(inputs, out, MONTH)
    released = release(out, MONTH, APPROVER).release
    (row,) = json.loads(history(out, "--json"))
    assert row["batch"] == f"released by {APPROVER} at {released.released_at} (run {first.run_id})"
    assert (row["released_by"], row["released_run"]) == (APPROVER, first.run_id)
    assert row["difference_to_next_batch"] is False


def test_history_of_a_month_published_late_behind_a_release(tmp_path: Path) -> None:
    """February is first run after March's batch was released: its own batch never was."""
    inputs = b.write_folder(
        tmp_path / "in",
        {
            "programs": [b.program()],
            "plans": [b.plan()],
            "plan_limits": [b.limit()],
            "earnings": [
                b.earning(earning_id="E-02", earning_month="2026-02", amount="300.00"),
                b.earning(earning_id="E-03", earning_month=MONTH, amount="500.00"),
            ],
            "payment_profiles": [b.payment_profile()],
        },
    )
    out = tmp_path / "out"
    run(inputs, out, MONTH)
    release(out, MONTH, APPROVER)
    february = run(inputs, out, "2026-02")
    rows = {row["run_id"]: row for row in json.loads(history(out, "--json"))}
    late = rows[february.run_id]
    assert late["batch"] == (
        "none: published behind the released batch of 2026-04-15; difference to the next batch"
    )
    assert (late["released_by"], late["difference_to_next_batch"]) == (None, True)
