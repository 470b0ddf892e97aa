"""The per-stage timing script on the sample month: every stage, in order, and the whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from stage_times import main

from flows.run import STAGES

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_stage_times_prints_each_stage_of_a_published_month(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([str(SAMPLE), "--month", "2026-04"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [stage.name for stage in STAGES] + ["whole"]
    assert lines[-1].endswith("(published)")
    assert all(" s wall " in line and " MiB peak" in line for line in lines)
