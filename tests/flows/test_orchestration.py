"""The Prefect flow under a real (test) Prefect server: states, artifacts, no caching
(docs/operations.md, "The schedule")."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.context import FlowRunContext
from prefect.flow_engine import run_flow
from typer.testing import CliRunner

from flows.cli import app
from flows.errors import InputRejected
from flows.orchestration import (
    CRON,
    DEPLOYMENT_NAME,
    FLOW_NAME,
    SUMMARY_KEY,
    TAGS,
    TOP_PAYOUTS_KEY,
    deployed,
    largest_per_currency,
    monthly_payout,
)
from flows.schedule import deployment_parameters
from flows.stages.read import retry_on_os_error
from tests.flows.corrections import correct_earning

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"

pytestmark = pytest.mark.prefect


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    shutil.copytree(SAMPLE, folder)
    return folder


def _artifacts(flow_run_id) -> dict[str, object]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {artifact.key: artifact for artifact in found}


def test_flow_run_completes_with_both_artifacts(
    prefect_server: str, inputs: Path, tmp_path: Path
) -> None:
    state = monthly_payout(
        month="2026-04", input_dir=str(inputs), output_dir=str(tmp_path / "out"), return_state=True
    )
    assert state.is_completed()
    summary = state.result()
    assert summary["status"] == "published"
    # The flow's return value is JSON-able, its manifest as manifest.json holds it.
    manifest = json.loads((Path(summary["run_dir"]) / "manifest.json").read_text(encoding="utf-8"))
    assert json.loads(json.dumps(summary))["manifest"] == manifest
    artifacts = _artifacts(state.state_details.flow_run_id)
    assert set(artifacts) == {SUMMARY_KEY, TOP_PAYOUTS_KEY}
    markdown = artifacts[SUMMARY_KEY].data
    assert "## 2026-04 paid on 2026-05-15" in markdown
    assert "## exceptions by code" in markdown
    assert "reconciliation holds" in markdown
    assert "| USD | PAY |" in markdown
    table = artifacts[TOP_PAYOUTS_KEY].data
    assert "payable_amount" in table
    for key in (SUMMARY_KEY, TOP_PAYOUTS_KEY):
        assert key == key.lower() and set(key) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


def test_failed_run_ends_failed_with_the_plain_sentence(
    prefect_server: str, inputs: Path, tmp_path: Path
) -> None:
    (inputs / "plan_limits.csv").unlink()
    state = monthly_payout(
        month="2026-04", input_dir=str(inputs), output_dir=str(tmp_path / "out"), return_state=True
    )
    assert state.is_failed()
    with pytest.raises(InputRejected, match="plan_limits.csv"):
        state.result()
    assert not (tmp_path / "out" / "payouts").exists()


def test_corrected_file_at_the_same_path_is_read_afresh(
    prefect_server: str, inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    monthly_payout(month="2026-04", input_dir=str(inputs), output_dir=str(out))
    old = correct_earning(inputs)
    monthly_payout(month="2026-04", input_dir=str(inputs), output_dir=str(out), reason="fix")
    plan = (
        pl.scan_parquet(out / "payouts")
        .filter(pl.col("plan_id") == "CP26-0001")
        .collect()
        .row(0, named=True)
    )
    # CP26-0001 earned 5000.00 in April before the correction of one of its rows.
    assert plan["earned_amount"] == Decimal("5000.00") - Decimal(old) + Decimal("6000.00")


@pytest.mark.parametrize(
    ("args", "code", "phrase"),
    [
        (["run", "--month", "2026-13"], 2, "--month"),
        (["run", "--month", "2026-04", "--input", "no-such-folder"], 2, "--input"),
        (["run", "--month", "2026-04", "--rules", "no-such.toml"], 2, "--rules"),
        (["backfill", "--from", "2026-04", "--to", "2026-02"], 2, "--to"),
        (["run", "--month", "２０２６-04"], 2, "--month"),
        (["run", "--month", "2026-04\n"], 2, "--month"),
        (["backfill", "--from", "2026-02\n", "--to", "2026-04"], 2, "--month"),
        (["history", "--month", "2026-04\n"], 2, "--month"),
    ],
    ids=[
        "bad-month",
        "missing-input-folder",
        "missing-rules",
        "backwards-backfill",
        "month-of-fullwidth-digits",
        "month-with-a-trailing-newline",
        "backfill-from-with-a-trailing-newline",
        "history-month-with-a-trailing-newline",
    ],
)
def test_cli_usage_errors(args: list[str], code: int, phrase: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "out")])
    assert result.exit_code == code
    assert phrase in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_exit_codes_of_a_month(prefect_server: str, inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    base = ["--month", "2026-04", "--input", str(inputs), "--output", str(out)]
    runner = CliRunner()

    strict = runner.invoke(app, ["run", *base, "--strict"])
    assert strict.exit_code == 3, strict.output
    assert "--strict" in strict.stderr
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())

    first = runner.invoke(app, ["run", *base])
    assert first.exit_code == 0, first.output
    assert "published by run" in first.stdout
    assert "reconciliation holds" in first.stdout

    again = runner.invoke(app, ["run", *base])
    assert again.exit_code == 0
    assert "unchanged" in again.stdout

    (inputs / "programs.csv").write_text("program,period,period_start\nA,FY26,2025-07-01\n")
    rejected = runner.invoke(app, ["run", *base])
    assert rejected.exit_code == 3
    assert "programs.csv" in rejected.stderr and "period_end" in rejected.stderr

    history = runner.invoke(app, ["history", "--output", str(out)])
    assert history.exit_code == 0
    run_id = re.search(r"published by run (\S+)", first.stdout).group(1)
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in history.stdout.splitlines()
        if line.startswith("| 2026-04")
    ]
    assert [(row[1], row[2]) for row in rows] == [(run_id, "yes")]


def test_cli_backfill_runs_the_months_in_order(
    prefect_server: str, inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["--input", str(inputs), "--output", str(out)]
    result = CliRunner().invoke(app, ["backfill", "--from", "2026-02", "--to", "2026-04", *args])
    assert result.exit_code == 0, result.output
    published = [line.split()[0] for line in result.stdout.splitlines() if "published by" in line]
    assert published == ["2026-02", "2026-03", "2026-04"]
    # April's paid_before_amount is, plan by plan, what February and March paid it.
    payouts = pl.scan_parquet(out / "payouts").collect()
    april = payouts.filter(pl.col("earning_month") == "2026-04")
    before = (
        payouts.filter(pl.col("earning_month") < "2026-04")
        .group_by("plan_id", "period")
        .agg(pl.col("payable_amount").sum().alias("paid_before"))
    )
    paid = april.join(before, on=["plan_id", "period"], how="left")
    assert paid["paid_before_amount"].to_list() == paid["paid_before"].fill_null(0).to_list()
    assert paid["paid_before_amount"].sum() == Decimal("3054452.50")
    assert "+" in result.stdout and "┃" not in result.stdout, "plain ASCII table off a terminal"


class _State:
    def __init__(self, data: BaseException) -> None:
        self.data = data


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (OSError("stale file handle"), True),
        (TimeoutError("mount timed out"), True),
        (FileNotFoundError("no such file"), False),
        (InputRejected("earnings.csv: the required column 'amount' is missing"), False),
        (ValueError("bad data"), False),
    ],
    ids=["os-error", "timeout", "missing-file", "input-rejected", "value-error"],
)
def test_only_io_errors_are_retried(error: BaseException, retried: bool) -> None:
    assert retry_on_os_error(None, None, _State(error)) is retried


def test_a_failed_run_prints_one_sentence_and_no_traceback(
    prefect_server: str, inputs: Path, tmp_path: Path
) -> None:
    """The real console script in its own process, against the session's Prefect server."""
    (inputs / "plan_limits.csv").unlink()
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("coop-payouts")), "run", "--month", "2026-04",
         "--input", str(inputs), "--output", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        f"coop-payouts: {inputs}: the required file plan_limits.csv (or .parquet) is missing"
    ]


def test_serve_without_a_server_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("coop-payouts")), "serve"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "prefect server start" in done.stderr and "PREFECT_API_URL" in done.stderr


def test_deployment_matches_prefect_yaml() -> None:
    described = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = described["deployments"]
    assert deployment["name"] == DEPLOYMENT_NAME
    assert deployment["entrypoint"] == "flows/orchestration.py:monthly_payout"
    (schedule,) = deployment["schedules"]
    assert schedule["cron"] == CRON == "0 6 1 * *"
    assert schedule["timezone"] == "UTC"
    assert deployment["parameters"] == deployment_parameters("data/sample", "data/output")

    served = monthly_payout.to_deployment(
        name=DEPLOYMENT_NAME,
        cron=CRON,
        parameters=deployment_parameters("data/sample", "data/output"),
    )
    assert served.parameters == deployment["parameters"]
    assert served.schedules[0].schedule.cron == schedule["cron"]


PREFECT = str(Path(sys.executable).with_name("prefect"))
CLI = str(Path(sys.executable).with_name("coop-payouts"))


def test_prefect_deploy_accepts_prefect_yaml(prefect_server: str, tmp_path: Path) -> None:
    """The README's deploy path, offline: the work pool, then `prefect deploy` of the file."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "prefect.yaml", project)
    shutil.copytree(ROOT / "flows", project / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    # A shell sets PWD to the folder it runs in; prefect.yaml's pull step names it.
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PWD": str(project)}

    def prefect(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PREFECT, *args], env=env, cwd=project, capture_output=True, text=True, timeout=120
        )

    pool = prefect("work-pool", "create", "coop-payouts", "--type", "process")
    assert pool.returncode == 0 or "already exists" in pool.stdout, pool.stdout + pool.stderr
    deployed = prefect("--no-prompt", "deploy", "--all")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    with get_client(sync_client=True) as client:
        found = client.read_deployment_by_name(f"{FLOW_NAME}/{DEPLOYMENT_NAME}")
    assert found.work_pool_name == "coop-payouts"
    assert found.parameters == deployment_parameters("data/sample", "data/output")
    (schedule,) = found.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == (CRON, "UTC")
    assert schedule.active
    limit = found.global_concurrency_limit
    assert limit is not None and limit.limit == 1, "two monthly runs never overlap"
    assert set(found.tags) == set(TAGS)
    assert found.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(project)}}
    ]


def test_a_deployed_run_prints_one_line_as_it_starts(
    prefect_server: str, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """`serve` and a worker stream the flow run's stdout: one line per run they start."""
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", "00000000-0000-0000-0000-000000000001")
    out = tmp_path / "out"
    state = monthly_payout(
        month="2026-04", input_dir=str(inputs), output_dir=str(out), return_state=True
    )
    assert state.is_completed()
    lines = [line for line in capsys.readouterr().out.splitlines() if "coop-payouts" in line]
    (line,) = lines
    assert "flow run coop-payouts-2026-04" in line and "started: month 2026-04" in line
    assert f"--output {out}" in line


def test_run_into_a_closed_pipe_publishes_and_exits_0(
    prefect_server: str, inputs: Path, tmp_path: Path
) -> None:
    """`coop-payouts run ... | head -1`: the reader going away is not an error."""
    out = tmp_path / "out"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [CLI, "run", "--month", "2026-04", "--input", str(inputs), "--output", str(out)],
            env={**os.environ, "PREFECT_API_URL": prefect_server},
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")
    assert len(list((out / "runs").iterdir())) == 1


@pytest.mark.parametrize("reason", ["[/bold] x", "\x1b[31mred"], ids=["markup", "escape"])
def test_a_reason_reaches_the_terminal_and_the_artifact_plainly(
    reason: str, prefect_server: str, inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    base = ["--month", "2026-04", "--input", str(inputs), "--output", str(out)]
    runner = CliRunner()
    assert runner.invoke(app, ["run", *base]).exit_code == 0
    correct_earning(inputs)
    rerun = runner.invoke(app, ["run", *base, "--reason", reason], env={"COLUMNS": "300"})
    assert rerun.exit_code == 0, rerun.output
    assert "reason: " + reason.replace("\x1b", "\\x1b") in rerun.stdout
    assert "\x1b" not in rerun.stdout

    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key={"any_": [SUMMARY_KEY]}),
            sort="CREATED_DESC",
            limit=1,
        )
    assert "\x1b" not in artifact.data
    assert reason.replace("[", "\\[").replace("]", "\\]").replace("\x1b", "\\x1b") in artifact.data


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["EUR", "JPY", "USD"]),
            st.integers(0, 30),
            st.integers(0, 4),
        ),
        max_size=60,
    ),
    st.integers(1, 6),
)
def test_largest_per_currency_is_the_head_of_each_currency_sorted(
    rows: list[tuple[str, int, int]], count: int
) -> None:
    """The artifacts' largest amounts per currency: what sorting every row by currency, amount
    (largest first) and key, then taking each currency's first `count`, gives, among many equal
    amounts too."""
    frame = pl.DataFrame(
        {
            "currency": [currency for currency, _, _ in rows],
            "key": [f"K{number:02d}" for number in range(len(rows))],
            "amount": [Decimal(cents) / 100 for _, cents, _ in rows],
            "other": [other for _, _, other in rows],
        },
        schema={
            "currency": pl.String,
            "key": pl.String,
            "amount": pl.Decimal(18, 2),
            "other": pl.Int64,
        },
    )
    sorted_heads = (
        frame.sort("currency", "amount", "key", descending=[False, True, False])
        .group_by("currency", maintain_order=True)
        .head(count)
    )
    assert_frame_equal(largest_per_currency(frame.lazy(), "amount", "key", count), sorted_heads)


@flow(persist_result=False)
def _deployed_probe() -> tuple[bool, str | None]:
    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None
    return deployed(), str(context.flow_run.deployment_id)


def test_deployed_is_what_the_flow_run_record_says(prefect_server: str) -> None:
    """`deployed` reads the run's own record: a run called from the command line has no
    deployment (and prints no started line); a run created from a deployment has one."""
    assert _deployed_probe() == (False, "None")
    deployment_id = _deployed_probe.to_deployment(name="probe").apply()
    with get_client(sync_client=True) as client:
        created = client.create_flow_run_from_deployment(deployment_id)
    assert run_flow(_deployed_probe, flow_run=created) == (True, str(deployment_id))
