"""The output folder (SPEC sections 5 and 6): published datasets, immutable runs, the lock.

Layout under the output folder:

    payouts/earning_month=M/part-0.parquet      published payout rows of M
    exceptions/earning_month=M/part-0.parquet   published exceptions of M
    runs/<run_id>/                              every run that published, never touched again
    .coop/lock                                  one run at a time (flock: freed when a process dies)
    .coop/published.json                        month -> the run that published it, and its digest
    .coop/journal.json                          a publish in progress (rolled back if interrupted)
    .coop/staging/                              runs being written; nothing here is published

Publishing replaces each month file with `os.replace` (atomic on one filesystem), so a reader of
`payouts/` sees the old month or the new, never a mix. The journal keeps hard links to the files it
replaces: if a run dies mid-publish, the next run puts them back before it starts.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flows.errors import Refused

DATASETS = ("payouts", "exceptions")
PART = "part-0.parquet"


@dataclass(frozen=True)
class OutputFolder:
    """Paths of one output folder."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / ".coop"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def staging(self) -> Path:
        return self.state / "staging"

    @property
    def registry(self) -> Path:
        return self.state / "published.json"

    @property
    def journal(self) -> Path:
        return self.state / "journal.json"

    def published_file(self, dataset: str, month: str) -> Path:
        return self.root / dataset / f"earning_month={month}" / PART

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def prepare(self) -> None:
        for folder in (self.state, self.runs, self.staging):
            folder.mkdir(parents=True, exist_ok=True)


def _write_json(path: Path, data: object) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def read_registry(folder: OutputFolder) -> dict[str, dict]:
    """month -> {run_id, digest, ...} of the published runs."""
    if not folder.registry.is_file():
        return {}
    return json.loads(folder.registry.read_text(encoding="utf-8"))


@contextmanager
def run_lock(folder: OutputFolder) -> Iterator[None]:
    """Hold the output folder's lock for one run; exit 4 if another run holds it.

    flock is released by the kernel when the holding process dies, so a killed run never
    leaves the folder locked.
    """
    folder.prepare()
    handle = (folder.state / "lock").open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise Refused(
                f"--output {folder.root}: another run ({holder}) holds the lock on this output "
                "folder; wait for it to finish and run again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        recover(folder)
        _clear_staging(folder)
        yield
    finally:
        handle.close()


def _clear_staging(folder: OutputFolder) -> None:
    """Remove what killed runs left half-written in staging (never published)."""
    for leftover in folder.staging.iterdir():
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()


def recover(folder: OutputFolder) -> str | None:
    """Finish an interrupted publish: keep it if the registry already names it, else roll back.

    Returns a sentence saying what was done, or None if nothing was pending.
    """
    if not folder.journal.is_file():
        return None
    journal = json.loads(folder.journal.read_text(encoding="utf-8"))
    month, run_id = journal["month"], journal["run_id"]
    if read_registry(folder).get(month, {}).get("run_id") == run_id:
        _drop_backups(journal)
        folder.journal.unlink()
        return f"the interrupted publish of {month} by run {run_id} had completed"
    for dataset in DATASETS:
        target = folder.published_file(dataset, month)
        backup = journal["backups"].get(dataset)
        if backup and Path(backup).exists():
            os.replace(backup, target)
        elif target.exists():
            target.unlink()
    run_dir = folder.run_dir(run_id)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    folder.journal.unlink()
    return f"the interrupted publish of {month} by run {run_id} was rolled back"


def _drop_backups(journal: dict) -> None:
    for backup in journal["backups"].values():
        if backup and Path(backup).exists():
            Path(backup).unlink()


def publish(
    folder: OutputFolder,
    month: str,
    run_id: str,
    staged_run: Path,
    staged_parts: dict[str, Path],
    registry_entry: dict,
) -> Path:
    """Make `staged_run` the run `run_id` and its parts the published month, atomically per file.

    `staged_parts` maps each dataset to a Parquet file (without the partition column) in the
    output folder's staging area, so every `os.replace` stays on one filesystem.
    """
    backups: dict[str, str | None] = {}
    for dataset in DATASETS:
        current = folder.published_file(dataset, month)
        if current.exists():
            backup = folder.state / f"backup-{dataset}-{month}.parquet"
            if backup.exists():
                backup.unlink()
            os.link(current, backup)
            backups[dataset] = str(backup)
        else:
            backups[dataset] = None
    _write_json(folder.journal, {"month": month, "run_id": run_id, "backups": backups})
    run_dir = folder.run_dir(run_id)
    os.rename(staged_run, run_dir)
    for dataset in DATASETS:
        target = folder.published_file(dataset, month)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged_parts[dataset], target)
    registry = read_registry(folder)
    registry[month] = registry_entry
    _write_json(folder.registry, registry)
    _drop_backups({"backups": backups})
    folder.journal.unlink()
    return run_dir


def list_runs(folder: OutputFolder) -> list[dict]:
    """Every run's manifest summary, oldest first."""
    runs = []
    if not folder.runs.is_dir():
        return runs
    for manifest_path in sorted(folder.runs.glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        runs.append(manifest)
    runs.sort(key=lambda m: (m["earning_month"], m["started_at"]))
    return runs
