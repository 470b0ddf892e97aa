"""The work folder of a run: frames handed from one stage to the next as Arrow IPC files, so a
Prefect task passes a path, never a frame (it would be pickled and hashed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from flows import io
from flows.run import MonthRun


def put(run: MonthRun, name: str, frame: pl.DataFrame) -> None:
    """Keep `frame` for a later stage of this run."""
    # Read back by this run only: uncompressed Arrow (a fifth of Parquet's CPU), no fsync.
    _keep(run, name, lambda path: frame.write_ipc(path, compression="uncompressed"))


def sink(run: MonthRun, name: str, rows: pl.LazyFrame) -> int:
    """Keep the result of the query `rows` for a later stage of this run, written as the query
    runs on polars' streaming engine (its rows are never all in memory); returns how many."""
    path = _keep(run, name, lambda path: rows.sink_ipc(path, compression="uncompressed"))
    return pl.scan_ipc(path).select(pl.len()).collect().item()


def _keep(run: MonthRun, name: str, write: Callable[[Path], object]) -> Path:
    """The work file `name`, written by `write`; a failure names the file."""
    run.work.mkdir(parents=True, exist_ok=True)
    path = run.work / f"{name}.arrow"
    try:
        write(path)
    except BaseException as error:
        raise io.write_error(error, path) from error
    return path


def get(run: MonthRun, name: str, columns: list[str] | None = None) -> pl.DataFrame:
    """A frame an earlier stage of this run kept."""
    return pl.read_ipc(run.work / f"{name}.arrow", columns=columns)


def scan(run: MonthRun, name: str, columns: list[str] | None = None) -> pl.LazyFrame:
    """A frame an earlier stage of this run kept, read when a query over it runs: of its
    `columns` (None: all), the rows the query keeps (a frame read whole first costs its whole
    size, and more: the file is mapped while it is read)."""
    rows = pl.scan_ipc(run.work / f"{name}.arrow")
    return rows if columns is None else rows.select(columns)


def has(run: MonthRun, name: str) -> bool:
    """Whether an earlier stage kept a frame of this name."""
    return (run.work / f"{name}.arrow").exists()
