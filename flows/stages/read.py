"""Stage "read": find the month's input files and check their headers (docs/inputs.md, "The
files"); how a rerun is told from the published month: the inputs' fingerprint and the --reason
gate (docs/reruns.md), which stage validate applies while it checks the reference files."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from coop_rules.vocabulary import Dataset
from flows import io
from flows.errors import Refused
from flows.publish import read_registry
from flows.run import MonthRun


@dataclass(frozen=True)
class ReadInputs:
    """The input files of a run and their extra columns, and the published run of the month
    (if any)."""

    files: dict[Dataset, io.InputFile]
    extra_columns: dict[str, list[str]]
    published: dict | None
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


def needs_reason(published: dict | None, digest: str, reason: str | None) -> bool:
    """Whether replacing the published month by these inputs and rules needs --reason."""
    return bool(published) and published.get("input_digest") != digest and not reason


def read_inputs(run: MonthRun) -> ReadInputs:
    """Find the inputs and check their headers; find the month's published run."""
    files = io.find_inputs(run.options.input_dir)
    extras = {dataset.value: io.input_columns(file) for dataset, file in sorted(files.items())}
    published = read_registry(run.folder).get(run.month)
    return ReadInputs(files, extras, published, run.options.reason)


def refuse_without_reason(run: MonthRun, inputs: ReadInputs, digest: str) -> None:
    """Refuse to replace the published month by other inputs or rules without --reason
    (a dry run only notes it)."""
    if needs_reason(inputs.published, digest, inputs.reason) and not run.options.dry_run:
        raise Refused(
            f"--reason: {run.month} was published by run {inputs.published['run_id']} from "
            "other inputs or rules; rerun with --reason TEXT to replace it"
        )
