"""Approval of a payment batch in Prefect (docs/payments.md, "Approval in Prefect"), under the
session's test server: the flow, called directly, pauses after publishing; a person answers
through the client (as the UI does) with approve or reject, or does not answer before the
timeout.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from flows.batches import batch_states
from flows.folder import OutputFolder
from flows.month import RunOptions
from flows.orchestration import SUMMARY_KEY, approval_form, monthly_payout
from flows.run import run_month
from tests.flows import payment_inputs
from tests.flows.releasing import published_run

pytestmark = pytest.mark.prefect

MONTH = "2026-01"
PAY_DATE = "2026-02-15"


def start_flow(inputs: Path, out: Path, timeout_hours: float) -> tuple[threading.Thread, dict]:
    """The flow in a thread: the call blocks while the run is paused."""
    ended: dict[str, Any] = {}

    def call() -> None:
        ended["state"] = monthly_payout(
            month=MONTH,
            input_dir=str(inputs),
            output_dir=str(out),
            await_approval=True,
            approval_timeout_hours=timeout_hours,
            return_state=True,
        )

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, ended


def paused_run(out: Path, seconds: float = 60) -> Any:
    """The paused flow run of this output folder, once the server says it is paused."""
    deadline = time.monotonic() + seconds
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    name=FlowRunFilterName(any_=[f"coop-payouts-{MONTH}"]),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
                )
            )
            mine = [r for r in runs if r.parameters.get("output_dir") == str(out)]
            if mine:
                return mine[0]
            time.sleep(0.2)
    raise AssertionError("the flow run never paused")


def paused_again(run: Any, seconds: float = 60) -> None:
    """Wait until the flow run, resumed once, is paused again (a new paused state)."""
    deadline = time.monotonic() + seconds
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            state = client.read_flow_run(run.id).state
            if state.type == StateType.PAUSED and state.id != run.state.id:
                return
            time.sleep(0.2)
    raise AssertionError("the flow run did not pause again")


def summary(flow_run_id: Any) -> str:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    # The summary is made before the pause and again after the answer: the latest counts.
    latest = max((a for a in found if a.key == SUMMARY_KEY), key=lambda a: a.created)
    return latest.data


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    amounts = {("USD", MONTH): "250.00", ("JPY", MONTH): "40000"}
    return payment_inputs.write_inputs(tmp_path / "in", amounts), tmp_path / "out"


def test_approve_through_the_client_releases_the_batch(
    prefect_server: str, folders: tuple[Path, Path]
) -> None:
    inputs, out = folders
    thread, ended = start_flow(inputs, out, timeout_hours=1)
    run = paused_run(out)
    assert batch_states(OutputFolder(out))[MONTH].state == "proposed"  # nothing paid while paused
    resume_flow_run(run.id, run_input={"approve": True, "approved_by": "Megan Bowen", "note": "ok"})
    thread.join(120)
    assert ended["state"].is_completed()
    release = json.loads((out / "releases" / PAY_DATE / "release.json").read_text())
    assert (release["approved_by"], release["note"]) == ("Megan Bowen", "ok")
    assert (out / "ledger" / f"payment_date={PAY_DATE}" / "part-0.parquet").is_file()
    text = summary(run.id)
    assert "is released by Megan Bowen" in text


def test_reject_leaves_the_batch_proposed_and_says_how_to_release(
    prefect_server: str, folders: tuple[Path, Path]
) -> None:
    inputs, out = folders
    thread, ended = start_flow(inputs, out, timeout_hours=1)
    run = paused_run(out)
    resume_flow_run(
        run.id,
        run_input={"approve": False, "approved_by": "Megan Bowen", "note": "JPY amount to check"},
    )
    thread.join(120)
    assert ended["state"].is_completed()
    assert not (out / "releases").exists() and not (out / "ledger").exists()
    assert batch_states(OutputFolder(out))[MONTH].state == "proposed"
    text = summary(run.id)
    assert "rejected by Megan Bowen (JPY amount to check) and stays proposed" in text
    # The artifact escapes Markdown (an underscore of the path is written "\\_").
    unescaped = text.replace("\\", "")
    run_id = published_run(out, MONTH)
    how = f"coop-payouts release --month {MONTH} --run {run_id} --approved-by NAME --output {out}"
    assert how in unescaped


def test_no_answer_before_the_timeout_leaves_the_batch_proposed(
    prefect_server: str, folders: tuple[Path, Path]
) -> None:
    inputs, out = folders
    thread, ended = start_flow(inputs, out, timeout_hours=0.0005)  # 1.8 s
    run = paused_run(out)
    thread.join(120)
    assert not thread.is_alive()
    # Prefect fails a run whose pause timed out (its server allows no other way out of an
    # expired pause): the run shows in red, and the batch it published stays proposed.
    assert ended["state"].is_failed()
    assert "never resumed" in ended["state"].message
    assert not (out / "releases").exists() and not (out / "ledger").exists()
    assert batch_states(OutputFolder(out))[MONTH].state == "proposed"
    text = summary(run.id)
    assert "was not approved within" in text and "stays proposed" in text
    assert f"coop-payouts release --month {MONTH}" in text


def test_the_summary_and_the_batch_are_shown_before_the_answer(
    prefect_server: str, folders: tuple[Path, Path]
) -> None:
    inputs, out = folders
    thread, ended = start_flow(inputs, out, timeout_hours=1)
    run = paused_run(out)
    run_id = published_run(out, MONTH)
    text = summary(run.id).replace("\\", "")
    assert f"waiting for approval of the batch of run {run_id}" in text
    assert "payment batch of 2026-02-15" in text and "largest payments" in text
    assert f"20260215-{payment_inputs.ACCOUNTS[0].mpn_id}-USD" in text
    resume_flow_run(run.id, run_input={"approve": False, "approved_by": "Megan Bowen"})
    thread.join(120)
    assert ended["state"].is_completed()


@pytest.mark.parametrize(
    "blank", ["   ", "\u3164", "\u2800\u200b"], ids=["spaces", "hangul", "braille"]
)
def test_a_blank_name_is_refused_and_the_run_waits_again(
    prefect_server: str, folders: tuple[Path, Path], blank: str
) -> None:
    inputs, out = folders
    thread, ended = start_flow(inputs, out, timeout_hours=1)
    run = paused_run(out)
    resume_flow_run(run.id, run_input={"approve": True, "approved_by": blank})
    paused_again(run)
    assert not (out / "releases").exists()
    resume_flow_run(run.id, run_input={"approve": True, "approved_by": "Megan Bowen"})
    thread.join(120)
    assert ended["state"].is_completed()
    release = json.loads((out / "releases" / PAY_DATE / "release.json").read_text())
    assert release["approved_by"] == "Megan Bowen"


def test_a_month_republished_while_waiting_releases_nothing_and_fails(
    prefect_server: str, folders: tuple[Path, Path]
) -> None:
    inputs, out = folders
    thread, ended = start_flow(inputs, out, timeout_hours=1)
    run = paused_run(out)
    reviewed = published_run(out, MONTH)
    amounts = {("USD", MONTH): "9250.00", ("JPY", MONTH): "40000"}
    payment_inputs.write_earnings(inputs, amounts)
    replacing = run_month(
        RunOptions(month=MONTH, input_dir=inputs, output_dir=out, reason="late row")
    ).run_id
    resume_flow_run(run.id, run_input={"approve": True, "approved_by": "Megan Bowen"})
    thread.join(120)
    assert ended["state"].is_failed()
    assert replacing in ended["state"].message and reviewed in ended["state"].message
    assert not (out / "releases").exists() and not (out / "ledger").exists()
    assert batch_states(OutputFolder(out))[MONTH].state == "proposed"
    text = summary(run.id).replace("\\", "")
    assert f"republished by run {replacing}" in text


def test_the_form_names_the_run_and_the_batch_totals(tmp_path: Path) -> None:
    inputs = payment_inputs.write_inputs(tmp_path / "in", {("USD", MONTH): "250.00"})
    outcome = run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=tmp_path / "out"))
    description = approval_form(outcome)._description
    assert outcome.run_id in description
    assert "USD PAY: 1 accounts, paid 250.00, forfeited 0.00, carried 0.00" in description
