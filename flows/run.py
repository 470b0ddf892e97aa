"""The runner: one month, end to end, as its named stages in order (docs/README.md, "The
layers").

    read -> validate -> route -> decide -> propose payments -> publish

Each stage is one module of `flows/stages/`. `run_month` calls them in order under the output
folder's lock, and checks what each declares: the datasets it reads were written before it,
the ones it writes exist after it. The CLI (`run`, `check`, `backfill`), the Prefect flow
(`flows/orchestration.py`, which makes each stage a task) and the tests all run this one
sequence.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from flows import catalog, clock
from flows.chain import verified_releases
from flows.errors import OutputUnusable
from flows.folder import OutputFolder, run_lock
from flows.month import MonthRun, RunOptions, RunOutcome, new_run_id, validate_month
from flows.options import check_month_ended, check_output
from flows.rules import load_rules
from flows.stages import Stage, decide, propose, publish, read, route, validate
from flows.stages.summaries import Staged

T = TypeVar("T")
# How the runner calls a stage: directly, or (the Prefect flow) as a task.
StageWrapper = Callable[[Stage[Any]], Callable[..., Any]]

STAGES: tuple[Stage[Any], ...] = (
    read.STAGE,
    validate.STAGE,
    route.STAGE,
    decide.STAGE,
    propose.STAGE,
    publish.STAGE,
)


def _direct(stage: Stage[Any]) -> Callable[..., Any]:
    return stage.run


class StageOrderError(RuntimeError):
    """A stage read a dataset no stage before it wrote, or did not write one it declares."""


def _declared(run: MonthRun, stage: Stage[T], as_stage: StageWrapper) -> Callable[..., T]:
    """`stage` as the runner calls it: its reads checked before, its writes after."""

    def call(*args: Any) -> T:
        missing = [name.value for name in stage.reads if not catalog.has(run, name)]
        if missing:
            raise StageOrderError(f"stage {stage.name} reads {missing}: no stage wrote them")
        result: T = as_stage(stage)(run, *args)
        unwritten = [name.value for name in stage.writes if not catalog.has(run, name)]
        if unwritten:
            raise StageOrderError(f"stage {stage.name} did not write {unwritten}")
        return result

    return call


def run_month(options: RunOptions, as_stage: StageWrapper = _direct) -> RunOutcome:
    """One month, end to end, under the output folder's lock.

    `as_stage` gives the callable of each stage (the Prefect flow passes one that makes a task
    of it). Raises a `RunError` subclass for every outcome but published, unchanged or (with
    `options.dry_run`) checked: a dry run stops before stage publish.
    """
    validate_month(options.month)
    check_month_ended(options.month, clock.now())
    rules = load_rules(options.rules_path)
    folder = OutputFolder(options.output_dir)
    with _held(folder, options.dry_run) as scratch:
        # Nothing under ledger/ or releases/ is trusted as found (docs/payments.md).
        verified_releases(folder)
        run = MonthRun(
            options=options,
            run_id=new_run_id(options.month),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            rules=rules,
            scratch=scratch,
        )
        try:
            return _stages(run, as_stage)
        finally:
            _clean(run)


def _stages(run: MonthRun, as_stage: StageWrapper) -> RunOutcome:
    """The stages of `run` in order; an unchanged month stops after validate."""
    inputs = _declared(run, read.STAGE, as_stage)()
    validated = _declared(run, validate.STAGE, as_stage)(inputs)
    if validated.unchanged_run_id:
        return RunOutcome(
            "unchanged",
            run.month,
            validated.unchanged_run_id,
            run.folder.run_dir(validated.unchanged_run_id),
            message=(
                f"{run.month} unchanged: run {validated.unchanged_run_id} already published "
                "these inputs and rules"
            ),
        )
    routed = _declared(run, route.STAGE, as_stage)(inputs)
    decided = _declared(run, decide.STAGE, as_stage)(inputs, validated, routed)
    proposed = _declared(run, propose.STAGE, as_stage)()
    staged = Staged(inputs, validated, routed, decided, proposed)
    if run.options.dry_run:
        return publish.dry_run_outcome(run, staged)
    return _declared(run, publish.STAGE, as_stage)(staged)


@contextmanager
def _held(folder: OutputFolder, dry_run: bool) -> Iterator[Path | None]:
    """The output folder's lock for the run (an interrupted publish settled first); for a dry
    run in a folder no run has used (or one it may not write), a scratch folder instead, so
    that checking creates nothing in the output folder."""
    if not dry_run or (folder.state.is_dir() and os.access(folder.state, os.W_OK | os.X_OK)):
        with run_lock(folder):
            yield None
        return
    check_output(folder.root, write=False, missing_ok=True)
    if folder.journal.exists():
        raise OutputUnusable(
            f"--output {folder.root}: an interrupted publish is pending and the folder is "
            "read-only; make it writable so the next command can settle it"
        )
    with tempfile.TemporaryDirectory(prefix="coop-payouts-check-") as scratch:
        yield Path(scratch)


def _clean(run: MonthRun) -> None:
    """Remove what the run left in staging (published runs have been renamed out of it)."""
    shutil.rmtree(run.work, ignore_errors=True)
    shutil.rmtree(run.staged, ignore_errors=True)
    for leftover in run.staging.glob(f"{run.run_id}-*"):
        leftover.unlink(missing_ok=True)
