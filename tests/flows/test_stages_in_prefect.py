"""The Prefect UI shows the month as its stages: one task run per stage, in order, and a flow run
named after the month (docs/operations.md, "Prefect")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.sorting import TaskRunSort

from flows.orchestration import month_tags, monthly_payout

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
STAGES = ["read", "validate", "route", "decide", "propose-payments", "publish"]

pytestmark = pytest.mark.prefect


def _task_runs(flow_run_id) -> list:
    with get_client(sync_client=True) as client:
        return client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
        )


def test_each_stage_is_one_task_run_and_the_flow_run_carries_the_month(
    prefect_server: str, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    shutil.copytree(SAMPLE, inputs)
    with month_tags("2026-04"):
        state = monthly_payout(
            month="2026-04",
            input_dir=str(inputs),
            output_dir=str(tmp_path / "out"),
            return_state=True,
        )
    assert state.is_completed()
    flow_run_id = state.state_details.flow_run_id
    runs = _task_runs(flow_run_id)
    assert [run.name.rsplit("-", 1)[0] for run in runs] == STAGES
    assert all(run.state.is_completed() for run in runs)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
    assert flow_run.name == "coop-payouts-2026-04"
    assert {"coop-payouts", "month-2026-04"} <= set(flow_run.tags)
    # Untagged task runs start without asking the server for a concurrency slot per tag.
    assert all(not run.tags for run in runs)


def test_a_failing_stage_shows_as_the_failed_task_run(prefect_server: str, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    shutil.copytree(SAMPLE, inputs)
    (inputs / "earnings.csv").write_text("earning_id,mpn_id\nE-1,1234567\n", encoding="utf-8")
    state = monthly_payout(
        month="2026-04",
        input_dir=str(inputs),
        output_dir=str(tmp_path / "out"),
        return_state=True,
    )
    assert state.is_failed()
    runs = _task_runs(state.state_details.flow_run_id)
    assert [(run.name.rsplit("-", 1)[0], run.state.type.value) for run in runs] == [
        ("read", "FAILED")
    ]
