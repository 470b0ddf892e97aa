"""The script that times a whole run's parts from Prefect's records, on the sample month."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from run_parts import main

from flows.run import STAGES

pytestmark = pytest.mark.prefect

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_run_parts_prints_each_stage_of_each_run_and_parts_that_add_up(
    prefect_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(SAMPLE), "--month", "2026-04", "--runs", "2", "--prefect-api-url", prefect_server]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    labels = [line[:26].strip() for line in lines]
    assert labels == [
        "before the flow run",
        *(f"stage {stage.name}" for stage in STAGES),
        "between and after stages",
        "whole",
    ]
    seconds = [
        [float(value) for value in re.findall(r"(-?[0-9.]+) s", line[26:])] for line in lines
    ]
    assert all(len(values) == 2 and min(values) >= 0 for values in seconds)
    for run in range(2):
        assert sum(values[run] for values in seconds[:-1]) == pytest.approx(
            seconds[-1][run], abs=0.02
        )


def test_run_parts_needs_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(SystemExit):
        main([str(SAMPLE)])
