"""The datasets a run's stages hand to one another, loaded and saved by name (docs/README.md,
"The layers").

A stage declares the names it reads and writes (`flows/stages/*.py`, `STAGE`), and the runner
checks them: a name a stage reads must have been written before it, a name it writes must exist
after it. Two kinds of dataset:

- hand-over frames (`Handover` and the reference `Dataset`s): Arrow IPC files in the run's work
  folder, never published, removed when the run ends; a Prefect task passes a path, never a
  frame (it would be pickled and hashed);
- run files (`RunFile`): the files of the staged run folder, published with the month.

The spilled rows of stage route (`Spill`) live in the same work folder.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

import polars as pl
import pyarrow as pa

from coop_rules.vocabulary import Dataset
from flows import files
from flows.month import MonthRun
from flows.records import OutputRecord


class Handover(StrEnum):
    """Frames one stage keeps for a later one, besides the checked reference datasets."""

    REFERENCE_EXCEPTIONS = "reference_exceptions"
    EARNED = "earned"
    INPUT_SUMS = "input_sums"
    EARNINGS_EXCEPTIONS = "earnings_exceptions"


class RunFile(StrEnum):
    """The files of a run folder (docs/reruns.md, "The run folder")."""

    PAYOUTS = "payouts.parquet"
    EXCEPTIONS = "exceptions.parquet"
    CHANGES = "changes.parquet"
    STATEMENTS = "statements.parquet"
    PAYMENTS = "payments.csv"
    OWED_CHANGES = "owed_changes.parquet"
    REPORT = "report.xlsx"
    MANIFEST = "manifest.json"


Name = Handover | Dataset | RunFile


def path(run: MonthRun, name: Name) -> Path:
    """Where the dataset `name` of this run lives."""
    if isinstance(name, RunFile):
        return run.staged / name.value
    return run.work / f"{name.value}.parquet"


def has(run: MonthRun, name: Name) -> bool:
    """Whether the dataset `name` has been written in this run."""
    return path(run, name).exists()


def save(run: MonthRun, name: Handover | Dataset, frame: pl.DataFrame) -> None:
    """Keep `frame` for a later stage of this run."""
    # Read back by this run only: lz4 Parquet without statistics, no fsync. Not Arrow: polars
    # maps an Arrow file into memory as it reads it, and the mapped pages count in the run's
    # peak (a 40M-row month's exception rows: its peak 923 to 825 MiB, docs/performance.md).
    _write(path(run, name), lambda to: frame.write_parquet(to, compression="lz4", statistics=False))


def sink(run: MonthRun, name: Handover | Dataset, rows: pl.LazyFrame) -> int:
    """Keep the result of the query `rows` for a later stage, written as the query runs on
    polars' streaming engine (its rows are never all in memory); returns how many."""
    to = path(run, name)
    _write(to, lambda to: rows.sink_parquet(to, compression="lz4", statistics=False))
    return pl.scan_parquet(to).select(pl.len()).collect().item()


def load(run: MonthRun, name: Handover | Dataset, columns: list[str] | None = None) -> pl.DataFrame:
    """A frame an earlier stage of this run kept."""
    return pl.read_parquet(path(run, name), columns=columns)


def scan(run: MonthRun, name: Handover | Dataset, columns: list[str] | None = None) -> pl.LazyFrame:
    """A frame an earlier stage of this run kept, read when a query over it runs: of its
    `columns` (None: all), the rows the query keeps (a frame read whole first costs its whole
    size, and more: the file is mapped while it is read)."""
    rows = pl.scan_parquet(path(run, name))
    return rows if columns is None else rows.select(columns)


def save_file(run: MonthRun, name: RunFile, frame: pl.DataFrame) -> OutputRecord:
    """Write a Parquet file of the staged run folder; its record for the manifest."""
    return OutputRecord(files.write_parquet_atomic(frame, path(run, name)), frame.height)


def save_bytes(run: MonthRun, name: RunFile, data: bytes, rows: int) -> OutputRecord:
    """Write a file of the staged run folder from its bytes; its record for the manifest."""
    return OutputRecord(files.write_bytes_atomic(data, path(run, name)), rows)


def load_file(run: MonthRun, name: RunFile, columns: list[str] | None = None) -> pl.DataFrame:
    """A Parquet file an earlier stage wrote into the staged run folder."""
    return pl.read_parquet(path(run, name), columns=columns)


def month_part(run: MonthRun, dataset: str) -> Path:
    """The staged file of a published dataset (payouts, exceptions, statements) of this run,
    beside the staged run folder: publishing renames it into the dataset's partition."""
    return run.staging / f"{run.run_id}-{dataset}.parquet"


def save_part(run: MonthRun, dataset: str, frame: pl.DataFrame) -> None:
    """Write the staged file of a published dataset (hive partitions hold no partition
    column: the caller drops it)."""
    files.write_parquet_atomic(frame, month_part(run, dataset))


def _write(to: Path, write: Callable[[Path], object]) -> None:
    """The work file `to`, written by `write`; a failure names the file."""
    to.parent.mkdir(parents=True, exist_ok=True)
    try:
        write(to)
    except BaseException as error:
        raise files.write_error(error, to) from error


class Spill:
    """Rows of the earnings' chunks (ledger buckets, exceptions), one Arrow file per part and
    chunk in the run's work folder, so memory holds one chunk's rows while reading and one
    part's when settling (docs/payouts.md, "In scope, and routing")."""

    def __init__(self, run: MonthRun) -> None:
        self.folder = run.work / "chunks"
        self._files: dict[str, list[Path]] = {}

    def put(self, part: str, rows: pl.DataFrame) -> None:
        files = self._files.setdefault(part, [])
        to = self.folder / f"{part}-{len(files):06d}.arrow"
        # Read back by this run only: uncompressed Arrow (a fifth of Parquet's CPU), no fsync.
        # Unlike `save`, Arrow stays: each file holds one slice's rows, so its mapped pages
        # are few, and `get` opens many of them at once (the measured peaks include these).
        _write(to, lambda to: rows.write_ipc(to, compression="uncompressed"))
        files.append(to)

    def get(self, part: str) -> pl.DataFrame | None:
        files = self._files.get(part)
        if not files:
            return None
        # pyarrow opens the many small files three times faster than pl.read_ipc (measured);
        # the frame comes back with the same types (Decimal, Enum included).
        return pl.DataFrame(pa.concat_tables(pa.ipc.open_file(file).read_all() for file in files))

    def scan(self, part: str) -> pl.LazyFrame | None:
        files = self._files.get(part)
        return pl.scan_ipc(files) if files else None
