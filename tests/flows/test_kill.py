"""SIGKILL at any moment leaves the published data as it was, and the next run succeeds
(docs/reruns.md, "Safety guarantees").

A real run (flows.run.run_month in a child process) is stopped while reading, computing,
writing its run folder and publishing, then killed; the published bytes are compared.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.batches import batch_states
from flows.cli import app
from flows.folder import OutputFolder, read_registry, run_lock
from flows.month import RunOptions
from flows.run import run_month
from tests.flows import payment_inputs
from tests.flows.corrections import correct_earning
from tests.flows.payment_inputs import MONTHS
from tests.flows.releasing import release

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "data" / "sample"


def published_bytes(out: Path) -> dict[str, str]:
    """sha256 of every file a reader of the published datasets sees."""
    files = sorted(
        p for d in ("payouts", "exceptions") for p in (out / d).rglob("*") if p.is_file()
    )
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["reading", "computing", "writing", "publishing"])
def test_kill_leaves_published_data_as_it_was(stage: str, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    shutil.copytree(SAMPLE, inputs)
    out = tmp_path / "out"
    first = run_month(RunOptions(month="2026-04", input_dir=inputs, output_dir=out))
    before = published_bytes(out)

    correct_earning(inputs)

    child = subprocess.Popen(
        [sys.executable, str(HERE / "kill_runner.py"), stage, str(inputs), str(out), "fix"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "PAUSED"
    child.send_signal(signal.SIGKILL)
    child.wait()

    if stage != "publishing":
        assert published_bytes(out) == before
    # The next run (or anything that takes the lock) rolls an interrupted publish back.
    with run_lock(OutputFolder(out)):
        pass
    assert published_bytes(out) == before
    assert read_registry(OutputFolder(out))["2026-04"].run_id == first.run_id
    assert [p.name for p in (out / "runs").iterdir()] == [first.run_id]
    assert not any((out / "payouts").rglob(".*")), "no hidden or temporary file in payouts/"
    pl.scan_parquet(out / "payouts").collect()

    after = run_month(RunOptions(month="2026-04", input_dir=inputs, output_dir=out, reason="fix"))
    assert after.status == "published"
    assert published_bytes(out) != before


def release_files(out: Path, pay_date: str) -> dict[str, bool]:
    """Which of a release's three files are in place."""
    return {
        "ledger": (out / "ledger" / f"payment_date={pay_date}" / "part-0.parquet").is_file(),
        "bank file": (out / "releases" / pay_date / "payments.csv").is_file(),
        "release.json": (out / "releases" / pay_date / "release.json").is_file(),
    }


def next_command(command: str, out: Path, inputs: Path) -> None:
    """What a person runs after the killed release: release again, history, or the next month."""
    if command == "release":
        release(out, "2026-01", "Megan Bowen")
    elif command == "history":
        result = CliRunner().invoke(app, ["history", "--output", str(out)])
        assert result.exit_code == 0, result.output
    else:
        run_month(RunOptions(month="2026-02", input_dir=inputs, output_dir=out))


# After the journal is written the release is decided: the next command completes it. Before,
# nothing of it is in place, and only `release` itself releases the batch.
@pytest.mark.slow
@pytest.mark.parametrize("command", ["release", "history", "run"])
@pytest.mark.parametrize(
    ("point", "completed"),
    [("staged", False), ("journal", True), ("renamed", True)],
    ids=["after-staging", "after-journal", "between-renames"],
)
def test_kill_during_release_leaves_none_or_all_of_it(
    point: str, completed: bool, command: str, tmp_path: Path
) -> None:
    amounts = {("USD", m): "250.00" for m in MONTHS[:2]} | {("JPY", m): "40000" for m in MONTHS[:2]}
    inputs = payment_inputs.write_inputs(tmp_path / "in", amounts)
    out = tmp_path / "out"
    january = run_month(RunOptions(month="2026-01", input_dir=inputs, output_dir=out))
    pay_date = january.manifest.payment_date

    child = subprocess.Popen(
        [sys.executable, str(HERE / "kill_release_runner.py"), point, str(out), "2026-01"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE.parents[1],
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "PAUSED"
    child.send_signal(signal.SIGKILL)
    child.wait()

    next_command(command, out, inputs)

    files = release_files(out, pay_date)
    released = completed or command == "release"
    assert files == dict.fromkeys(files, released), f"half a release: {files}"
    folder = OutputFolder(out)
    assert not (folder.state / "release-journal.json").exists()
    if command != "history":  # history only reads; the next run or release clears staging
        assert not any(folder.staging.iterdir()), "nothing left in staging"
    if released:
        bank = (out / "releases" / pay_date / "payments.csv").read_bytes()
        assert bank == (january.run_dir / "payments.csv").read_bytes()
        ledger = pl.read_parquet(out / "ledger" / f"payment_date={pay_date}" / "part-0.parquet")
        assert sorted(ledger.get_column("payment_id").to_list()) == [
            "20260215-1093384-JPY",
            "20260215-4412907-USD",
        ]
    state = batch_states(folder)["2026-01"].state
    assert state == ("released" if released else "proposed")
    if command == "run":
        # The next month's batch rests on the release as it ended up: never counted twice.
        february = pl.read_parquet(
            folder.run_dir(read_registry(folder)["2026-02"].run_id) / "statements.parquet"
        )
        owed = dict(zip(february.get_column("currency"), february.get_column("owed"), strict=True))
        assert {k: str(v) for k, v in owed.items()} == {"USD": "250.00", "JPY": "40000.00"}
