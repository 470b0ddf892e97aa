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

from flows.publish import OutputFolder, read_registry, run_lock
from flows.run import RunOptions, run_month
from tests.flows.corrections import correct_earning

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
    assert read_registry(OutputFolder(out))["2026-04"]["run_id"] == first.run_id
    assert [p.name for p in (out / "runs").iterdir()] == [first.run_id]
    assert not any((out / "payouts").rglob(".*")), "no hidden or temporary file in payouts/"
    pl.scan_parquet(out / "payouts").collect()

    after = run_month(RunOptions(month="2026-04", input_dir=inputs, output_dir=out, reason="fix"))
    assert after.status == "published"
    assert published_bytes(out) != before
