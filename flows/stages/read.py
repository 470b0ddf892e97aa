"""Stage "read": find the month's input files, check their headers and fingerprint their bytes
(docs/inputs.md, "The files"), and refuse a changed rerun without --reason (docs/reruns.md)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from coop_rules.vocabulary import Dataset
from flows import reading
from flows.errors import Refused
from flows.folder import OutputFolder, read_registry
from flows.month import MonthRun, progress
from flows.records import RegistryEntry
from flows.rules import RulesFile
from flows.stages import Stage
from flows.stages.summaries import ReadInputs, input_digest, needs_reason


def fingerprint(files: dict[Dataset, reading.InputFile]) -> dict[str, str]:
    """sha256 of each input file, two at a time (hashing releases the GIL)."""
    ordered = sorted(files.items())
    with ThreadPoolExecutor(max_workers=2) as pool:
        digests = list(pool.map(lambda item: reading.input_sha256(item[1]), ordered))
    return {dataset.value: digest for (dataset, _), digest in zip(ordered, digests, strict=True)}


def read_inputs(run: MonthRun) -> ReadInputs:
    """Find and fingerprint the inputs; refuse a rerun of changed inputs without --reason."""
    files = reading.find_inputs(run.options.input_dir)
    extras = {dataset.value: reading.input_columns(file) for dataset, file in sorted(files.items())}
    progress.info("fingerprinting inputs")
    shas = fingerprint(files)
    digest = input_digest(shas, run.rules.sha256)
    published = read_registry(run.folder).get(run.month)
    reason = run.options.reason
    inputs = ReadInputs(files, shas, extras, digest, published, reason)
    if inputs.reason_needed and not run.options.dry_run:
        assert published is not None
        raise _reason_needed(run.month, published)
    return inputs


def _reason_needed(month: str, published: RegistryEntry) -> Refused:
    return Refused(
        f"--reason: {month} was published by run {published.run_id} from other inputs or "
        "rules; rerun with --reason TEXT to replace it"
    )


def refuse_early(
    months: list[str], input_dir: Path, output: Path, rules: RulesFile, reason: str | None
) -> None:
    """What a run would refuse at stage read, judged before Prefect starts (docs/operations.md):
    missing input files, every one named, and headers; a published month whose inputs or
    rules changed, without --reason. The inputs are fingerprinted only in that last case."""
    files = reading.find_inputs(input_dir)
    for file in files.values():
        reading.input_columns(file)
    if reason:
        return
    registry = read_registry(OutputFolder(output))
    published = [month for month in months if month in registry]
    if not published:
        return
    digest = input_digest(fingerprint(files), rules.sha256)
    for month in published:
        if needs_reason(registry[month], digest, reason):
            raise _reason_needed(month, registry[month])


def retry_on_os_error(task_: Any, task_run: Any, state: Any) -> bool:
    """Retry stage read only when it failed on an OSError (a slow or flaky mount), never on
    bad data (Prefect calls this with the failed task's state)."""
    return isinstance(state.data, OSError) and not isinstance(state.data, FileNotFoundError)


STAGE = Stage(
    "read",
    read_inputs,
    task_options={
        "retries": 2,
        "retry_delay_seconds": 2,
        "retry_condition_fn": retry_on_os_error,
    },
)
