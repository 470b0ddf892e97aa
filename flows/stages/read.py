"""Stage "read": find the month's input files, check their headers and fingerprint their bytes
(docs/inputs.md, "The files"), and refuse a changed rerun without --reason (docs/reruns.md)."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from coop_rules.vocabulary import Dataset
from flows import io
from flows.errors import Refused
from flows.publish import OutputFolder, read_registry
from flows.records import RegistryEntry
from flows.rules import RulesFile
from flows.run import MonthRun, progress


@dataclass(frozen=True)
class ReadInputs:
    """The input files of a run, their sha256 and extra columns, and the published run of the
    month (if any) with whether the inputs or rules changed since it."""

    files: dict[Dataset, io.InputFile]
    sha256: dict[str, str]
    extra_columns: dict[str, list[str]]
    input_digest: str
    published: RegistryEntry | None
    reason: str | None


def input_digest(shas: dict[str, str], rules_sha: str) -> str:
    """One digest of the input files and the rules file."""
    text = json.dumps({"inputs": shas, "rules": rules_sha}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(files: dict[Dataset, io.InputFile]) -> dict[str, str]:
    """sha256 of each input file, two at a time (hashing releases the GIL)."""
    ordered = sorted(files.items())
    with ThreadPoolExecutor(max_workers=2) as pool:
        digests = list(pool.map(lambda item: io.input_sha256(item[1]), ordered))
    return {dataset.value: digest for (dataset, _), digest in zip(ordered, digests, strict=True)}


def needs_reason(
    published: RegistryEntry | None, digest: str, reason: str | None
) -> TypeGuard[RegistryEntry]:
    """Whether replacing the published month by these inputs and rules needs --reason."""
    return published is not None and published.input_digest != digest and not reason


def read_inputs(run: MonthRun) -> ReadInputs:
    """Find and fingerprint the inputs; refuse a rerun of changed inputs without --reason."""
    files = io.find_inputs(run.options.input_dir)
    extras = {dataset.value: io.input_columns(file) for dataset, file in sorted(files.items())}
    progress.info("fingerprinting inputs")
    shas = fingerprint(files)
    digest = input_digest(shas, run.rules.sha256)
    published = read_registry(run.folder).get(run.month)
    reason = run.options.reason
    if needs_reason(published, digest, reason) and not run.options.dry_run:
        raise _reason_needed(run.month, published)
    return ReadInputs(files, shas, extras, digest, published, reason)


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
    files = io.find_inputs(input_dir)
    for file in files.values():
        io.input_columns(file)
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
