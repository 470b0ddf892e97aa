"""The output folder (docs/reruns.md): published datasets, immutable runs, the lock.

Layout under the output folder:

    payouts/earning_month=M/part-0.parquet      published payout rows of M
    exceptions/earning_month=M/part-0.parquet   published exceptions of M
    runs/<run_id>/                              every run that published, never touched again
    rejected/<run_id>/exceptions.csv            exceptions of a run refused under --strict
    .coop/lock                                  one run at a time (flock: freed when a process dies)
    .coop/published.json                        month -> the run that published it, and its digests
    .coop/journal.json                          a publish in progress (rolled back if interrupted)
    .coop/release-journal.json                  a release in progress (completed if interrupted)
    .coop/staging/                              runs being written, backups of a publish in
                                                progress; nothing here is published

Publishing replaces each month file with `os.replace` (atomic on one filesystem), so a reader of
one file sees the old month or the new. The journal names hard links to the files it replaces,
relative to the output folder: a publish that fails puts them back itself, and one whose process
died is completed or rolled back by the next command of any kind (`settle`), from any working
directory. See docs/reruns.md, "Safety guarantees".
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from flows import interrupts
from flows.errors import DiskFull, OutputUnusable, Refused, RunError
from flows.files import write_bytes_atomic
from flows.interrupts import Commit
from flows.options import check_output
from flows.records import (
    Manifest,
    PublishJournal,
    Record,
    Registry,
    RegistryEntry,
    ReleaseJournal,
    record_bytes,
)

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
    def rejected(self) -> Path:
        """The exceptions of runs refused under --strict, one folder per run; never published."""
        return self.root / "rejected"

    @property
    def registry(self) -> Path:
        return self.state / "published.json"

    @property
    def journal(self) -> Path:
        return self.state / "journal.json"

    @property
    def release_journal(self) -> Path:
        return self.state / "release-journal.json"

    def published_file(self, dataset: str, month: str) -> Path:
        return self.root / dataset / f"earning_month={month}" / PART

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def prepare(self) -> None:
        for folder in (self.state, self.runs, self.staging):
            folder.mkdir(parents=True, exist_ok=True)


def _write_json(path: Path, record: Record | Registry) -> None:
    """A record as JSON at `path`, keys sorted, through the one atomic write (a `.tmp` file,
    fsync, rename)."""
    write_bytes_atomic(record_bytes(record, sort_keys=True), path)


def read_registry(folder: OutputFolder) -> dict[str, RegistryEntry]:
    """month -> the published run of the month (`.coop/published.json`)."""
    if not folder.registry.is_file():
        return {}
    return Registry.model_validate_json(folder.registry.read_bytes()).root


# errno of the failures that say the output folder cannot take the run, not that the run is wrong.
_FULL = {errno.ENOSPC, errno.EDQUOT}
_UNUSABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR}


def output_error(folder: OutputFolder, error: BaseException) -> RunError | None:
    """The sentence for a disk full, read-only or forbidden output folder; None for any other
    failure (or one about a file outside the folder, such as an input)."""
    if not isinstance(error, OSError) or error.errno not in _FULL | _UNUSABLE:
        return None
    place = str(folder.root)
    if error.filename is not None:
        place = os.fsdecode(error.filename)
        if not Path(place).absolute().is_relative_to(folder.root.absolute()):
            return None
    kept = (
        "the next command puts the published data back as it was"
        if folder.journal.exists()
        else "the published data was left as it was"
    )
    if error.errno in _FULL:
        return DiskFull(
            f"--output {folder.root}: the disk is full (no space left while writing {place}); "
            f"{kept}: free some space and run again"
        )
    return OutputUnusable(
        f"--output {folder.root}: cannot write {place} ({os.strerror(error.errno).lower()}); {kept}"
    )


def _translated(folder: OutputFolder, error: BaseException) -> BaseException:
    return output_error(folder, error) or error


def _lock_handle(folder: OutputFolder) -> TextIO:
    try:
        folder.prepare()
        return (folder.state / "lock").open("a+", encoding="utf-8")
    except OSError as error:
        raise _translated(folder, error) from error


def _try_lock(handle: TextIO) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def run_lock(folder: OutputFolder) -> Iterator[None]:
    """Hold the output folder's lock for one run; exit 4 if another run holds it.

    flock is released by the kernel when the holding process dies, so a killed run never
    leaves the folder locked. On the way in, an interrupted publish is completed or rolled back;
    on the way out after a failure, nothing the run staged is left behind.
    """
    check_output(folder.root)
    handle = _lock_handle(folder)
    try:
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise Refused(
                f"--output {folder.root}: another run ({holder}) holds the lock on this output "
                "folder; wait for it to finish and run again"
            )
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
            recover(folder)
            complete_release(folder)
            _clear_staging(folder)
        except OSError as error:
            raise _translated(folder, error) from error
        try:
            yield
        except BaseException as error:
            _tidy_after_failure(folder)
            translated = _translated(folder, error)
            if translated is error:
                raise
            raise translated from error
    finally:
        handle.close()


def settle(folder: OutputFolder) -> str | None:
    """Complete or roll back a publish, and complete a release, that a killed process left
    half done; every command that reads or writes an output folder calls this first (a run
    does it under its lock).

    Takes the lock only for the moment it needs. If a live run holds the lock, the pending
    publish or release is that run's own and it finishes it: nothing is done. Returns what
    was done.
    """
    if not folder.journal.is_file() and not folder.release_journal.is_file():
        return None
    handle = _lock_handle(folder)
    try:
        if not _try_lock(handle):
            return None
        done = [recover(folder), complete_release(folder)]
        return "; ".join(sentence for sentence in done if sentence) or None
    except OSError as error:
        raise _translated(folder, error) from error
    finally:
        handle.close()


def _clear_staging(folder: OutputFolder) -> None:
    """Remove what failed or killed runs left half-written in staging (never published); not
    while a release journal still names staged files to move into place."""
    if folder.release_journal.exists():
        return
    for leftover in folder.staging.iterdir():
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
    for temporary in folder.state.glob(".*.tmp"):
        temporary.unlink()


def _tidy_after_failure(folder: OutputFolder) -> None:
    """After a failed run: roll back a publish still pending, drop what was staged. Best effort:
    the original error is what the person must read, and the next command tries again."""
    with suppress(OSError):
        recover(folder)
    with suppress(OSError):
        complete_release(folder)
    with suppress(OSError):
        _clear_staging(folder)


def _stored(folder: OutputFolder, path: Path) -> str:
    """A path inside the output folder as the journal keeps it: relative to the folder, so any
    process finds it whatever its working directory."""
    return path.relative_to(folder.root).as_posix()


def _resolved(folder: OutputFolder, stored: str) -> Path:
    path = Path(stored)
    if path.is_absolute():
        return path
    if ".coop" in path.parts:
        # Journals of earlier versions held the folder as the run was given it: keep what is
        # inside the output folder.
        return folder.root.joinpath(*path.parts[path.parts.index(".coop") :])
    return folder.root / path


def recover(folder: OutputFolder) -> str | None:
    """Finish an interrupted publish: keep it if the registry already names it, else roll back.

    Returns a sentence saying what was done, or None if nothing was pending.
    """
    if not folder.journal.is_file():
        return None
    journal = PublishJournal.model_validate_json(folder.journal.read_bytes())
    month, run_id = journal.month, journal.run_id
    published = read_registry(folder).get(month)
    if published is not None and published.run_id == run_id:
        _finish(folder, journal)
        return f"the interrupted publish of {month} by run {run_id} had completed"
    _roll_back(folder, journal)
    return f"the interrupted publish of {month} by run {run_id} was rolled back"


def complete_release(folder: OutputFolder) -> str | None:
    """Finish a release a killed process left half done (its journal exists); safe to repeat.

    The journal is written only once everything it names is staged in full, so an
    interrupted release always goes forward: all of it is put in place, never half
    (docs/payments.md, "Proposed, then released").
    """
    if not folder.release_journal.is_file():
        return None
    moves = ReleaseJournal.model_validate_json(folder.release_journal.read_bytes()).root
    for staged, target in moves:
        source, destination = _resolved(folder, staged), _resolved(folder, target)
        if source.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, destination)
    folder.release_journal.unlink()
    return "an interrupted release was completed"


def _roll_back(folder: OutputFolder, journal: PublishJournal) -> None:
    """Put back the files a publish replaced and remove what it added; safe to repeat."""
    month, run_id = journal.month, journal.run_id
    targets = journal.targets or {
        dataset: _stored(folder, folder.published_file(dataset, month)) for dataset in DATASETS
    }
    for dataset, stored_target in targets.items():
        target = _resolved(folder, stored_target)
        stored = journal.backups.get(dataset)
        if stored is None:
            # The month had no such file before this publish: whatever is there is the new run's.
            target.unlink(missing_ok=True)
            with suppress(OSError):
                target.parent.rmdir()
            continue
        backup = _resolved(folder, stored)
        if backup.exists():
            # If the target was never replaced it is the same file: rename does nothing.
            os.replace(backup, target)
            backup.unlink(missing_ok=True)
        # A missing backup was already put back by an interrupted rollback: the target is it.
    run_dir = folder.run_dir(run_id)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    folder.journal.unlink()


def _finish(folder: OutputFolder, journal: PublishJournal) -> None:
    """A publish the registry names: its backups are no longer needed."""
    for stored in journal.backups.values():
        if stored is not None:
            _resolved(folder, stored).unlink(missing_ok=True)
    folder.journal.unlink()


def publish(
    folder: OutputFolder,
    month: str,
    run_id: str,
    staged_run: Path,
    staged_parts: dict[str, Path],
    registry_entry: RegistryEntry,
    targets: dict[str, Path] | None = None,
) -> Path:
    """Make `staged_run` the run `run_id` and its parts the published month.

    `staged_parts` maps each dataset to a Parquet file (without the partition column) in the
    output folder's staging area, so every `os.replace` stays on one filesystem. The month's
    files are replaced by two consecutive renames, then the registry names the run: that write
    is the commit. Any failure before it (a full disk, a read-only folder) puts the previous
    files back before the error leaves this function, and leaves nothing staged behind; a
    process killed before it is rolled back by the next command (`settle`).
    """
    targets = {
        dataset: (targets or {}).get(dataset) or folder.published_file(dataset, month)
        for dataset in staged_parts
    }
    backups: dict[str, str | None] = {}
    try:
        # Hard links keep the replaced files; they are made before the journal names them.
        for dataset, current in targets.items():
            if current.exists():
                backup = folder.staging / f"backup-{dataset}-{month}.parquet"
                backup.unlink(missing_ok=True)
                os.link(current, backup)
                backups[dataset] = _stored(folder, backup)
            else:
                backups[dataset] = None
        journal = PublishJournal(
            month=month,
            run_id=run_id,
            backups=backups,
            targets={dataset: _stored(folder, path) for dataset, path in targets.items()},
        )
        _write_json(folder.journal, journal)
    except BaseException as error:
        _drop_staged(folder, staged_run, staged_parts, backups)
        raise _translated(folder, error) from error
    # From the first rename to the commit or the rollback, a Ctrl-C or SIGTERM waits: it then
    # says truthfully whether the month was published (docs/operations.md, "Stopping a command").
    with interrupts.held():
        try:
            run_dir = folder.run_dir(run_id)
            os.rename(staged_run, run_dir)
            for dataset, target in targets.items():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged_parts[dataset], target)
            registry = read_registry(folder)
            registry[month] = registry_entry
            with interrupts.commit_point(Commit("published", month, run_id, folder.root)):
                _write_json(folder.registry, Registry(registry))
        except BaseException as error:
            with suppress(OSError):
                _roll_back(folder, journal)
            _drop_staged(folder, staged_run, staged_parts, backups)
            raise _translated(folder, error) from error
    # Committed: what is left is tidying, which the next command redoes if it fails here.
    with suppress(OSError):
        _finish(folder, journal)
    return run_dir


def _drop_staged(
    folder: OutputFolder,
    staged_run: Path,
    staged_parts: dict[str, Path],
    backups: dict[str, str | None],
) -> None:
    """Remove a failed publish's staged files, unless a journal still needs its backups."""
    with suppress(OSError):
        if staged_run.exists():
            shutil.rmtree(staged_run)
        for part in staged_parts.values():
            part.unlink(missing_ok=True)
        if not folder.journal.exists():
            for stored in backups.values():
                if stored is not None:
                    _resolved(folder, stored).unlink(missing_ok=True)


def list_runs(folder: OutputFolder) -> list[Manifest]:
    """Every run's manifest, oldest first."""
    if not folder.runs.is_dir():
        return []
    runs = [Manifest.read(path) for path in sorted(folder.runs.glob("*/manifest.json"))]
    runs.sort(key=lambda m: (m.earning_month, m.started_at))
    return runs
