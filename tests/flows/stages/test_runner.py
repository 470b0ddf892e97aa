"""The runner holds each stage to its declaration (docs/README.md, "The layers"): a dataset a
stage reads must have been written before it, one it writes must exist after it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from coop_rules.vocabulary import Dataset
from flows import catalog
from flows.catalog import Handover, RunFile
from flows.month import MonthRun, RunOptions
from flows.rules import load_rules
from flows.run import STAGES, StageOrderError, _declared, _direct
from flows.stages import Stage


@pytest.fixture
def run(tmp_path: Path) -> MonthRun:
    return MonthRun(
        options=RunOptions(month="2026-04", output_dir=tmp_path / "out"),
        run_id="2026-04_20260501T060000Z_abcdef",
        started_at="2026-05-01T06:00:00+00:00",
        rules=load_rules(None),
        scratch=tmp_path / "scratch",
    )


def _writes(name: Handover) -> Stage[None]:
    def stage(run: MonthRun) -> None:
        catalog.save(run, name, pl.DataFrame({"a": [1]}))

    return Stage("writer", stage, writes=(name,))


def test_a_stage_that_does_not_write_what_it_declares_stops_the_run(run: MonthRun) -> None:
    quiet = Stage("quiet", lambda run: None, writes=(Handover.EARNED,))
    with pytest.raises(StageOrderError, match=r"stage quiet did not write \['earned'\]"):
        _declared(run, quiet, _direct)()


def test_a_stage_that_reads_what_no_stage_wrote_stops_before_it_runs(run: MonthRun) -> None:
    called = []
    reader = Stage("reader", lambda run: called.append(run), reads=(Handover.INPUT_SUMS,))
    with pytest.raises(StageOrderError, match=r"stage reader reads \['input_sums'\]"):
        _declared(run, reader, _direct)()
    assert called == []


def test_what_a_stage_wrote_is_what_the_next_one_reads(run: MonthRun) -> None:
    _declared(run, _writes(Handover.EARNED), _direct)()
    reader = Stage(
        "reader", lambda run: catalog.load(run, Handover.EARNED), reads=(Handover.EARNED,)
    )
    assert _declared(run, reader, _direct)().to_dicts() == [{"a": 1}]


def test_every_dataset_a_stage_reads_is_written_by_a_stage_before_it() -> None:
    written: set[Handover | Dataset | RunFile] = set()
    for stage in STAGES:
        assert set(stage.reads) <= written, stage.name
        written |= set(stage.writes)
