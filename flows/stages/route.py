"""Stage "route": run the earnings file through the queries of `pipeline/route.py` on polars'
streaming engine, so every in-scope row ends in a plan's sum or in an exception (docs/payouts.md,
"In scope, and routing"); refuse a month that has no earnings rows at all unless --allow-empty
(docs/reruns.md, "Safety guarantees")."""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from coop_rules.integrity import OK, PLAN_KEY
from coop_rules.vocabulary import Dataset
from flows import io
from flows.defaults import DEFAULTS
from flows.errors import InputRejected
from flows.run import MonthRun, progress, sums_fit
from flows.stages import work
from flows.stages.read import ReadInputs
from pipeline.route import (
    TALLIED,
    CheckedChunk,
    Earnings,
    EarningsTally,
    duplicate_candidates,
    tallies,
)

ROUTING_COLUMNS = ["program", "period", "period_start", "period_end", OK]
# The exceptional rows given their sentences at a time: pandera's memory grows with the
# failures it is shown (docs/performance.md).
SENTENCE_ROWS = 50_000
# The routed rows summed at a time (`tallies`).
TALLY_ROWS = 2_000_000


class FileSpill:
    """Rows of the earnings' chunks (ledger buckets, exceptions), one Arrow file per part and
    chunk in the run's work folder, so memory holds one chunk's rows while reading and one
    part's when settling."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files: dict[str, list[Path]] = {}

    def put(self, part: str, rows: pl.DataFrame) -> None:
        files = self._files.setdefault(part, [])
        path = self.folder / f"{part}-{len(files):06d}.arrow"
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            # Read back by this run only: uncompressed Arrow (a fifth of Parquet's CPU), no fsync.
            rows.write_ipc(path, compression="uncompressed")
        except BaseException as error:
            raise io.write_error(error, path) from error
        files.append(path)

    def get(self, part: str) -> pl.DataFrame | None:
        files = self._files.get(part)
        if not files:
            return None
        # pyarrow opens the many small files three times faster than pl.read_ipc (measured);
        # the frame comes back with the same types (Decimal, Enum included).
        return pl.DataFrame(pa.concat_tables(pa.ipc.open_file(path).read_all() for path in files))

    def scan(self, part: str) -> pl.LazyFrame | None:
        files = self._files.get(part)
        return pl.scan_ipc(files) if files else None


def checked_in_order(
    tally: EarningsTally, chunks: Iterator[pl.DataFrame], workers: int = DEFAULTS.chunk_workers
) -> Iterator[CheckedChunk]:
    """Each chunk checked by `tally`, in file order; `workers` chunks are checked at the same
    time while the next one is read (polars works outside Python's lock, so the two cores
    stay busy; at most `workers` + 1 chunks are in memory)."""
    with ThreadPoolExecutor(workers, thread_name_prefix="route") as pool:
        pending: deque[Future[CheckedChunk]] = deque()
        try:
            for chunk in chunks:
                if len(pending) == workers:
                    yield pending.popleft().result()
                pending.append(pool.submit(tally.check, chunk))
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


@dataclass(frozen=True)
class Routed:
    """Counts of the earnings file: every row, the in-scope rows, the rows of M itself."""

    rows: int
    in_scope_rows: int
    month_rows: int
    exceptions: int


def route_earnings(run: MonthRun, inputs: ReadInputs) -> Routed:
    """Check, route and sum the month's earnings; keep the sums and exceptions for decide."""
    file = inputs.files[Dataset.EARNINGS]
    spill = FileSpill(run.work / "chunks")
    tally = EarningsTally(
        run.month,
        run.rules.settings,
        work.get(run, Dataset.PROGRAMS.value, ROUTING_COLUMNS),
        work.get(run, Dataset.PLANS.value, [*PLAN_KEY, "plan_id", "currency", OK]),
        spill,
    )
    with sums_fit(run.month):
        stream(tally, file, spill, run.work / "stream", min(run.options.chunk_rows, SENTENCE_ROWS))
        progress.info(f"{file.name}: {tally.rows:,} rows checked and routed")
        earnings = tally.finish()
    if earnings.month_rows == 0 and not run.options.allow_empty:
        raise InputRejected(
            f"{file.name} holds no earnings rows of {run.month}; nothing was published "
            "(the month's earnings may not have arrived yet; --allow-empty publishes an empty "
            "month on purpose)"
        )
    exceptions = keep(run, earnings)
    return Routed(earnings.rows, earnings.in_scope_rows, earnings.month_rows, exceptions)


def stream(
    tally: EarningsTally, file: io.InputFile, spill: FileSpill, folder: Path, slice_rows: int
) -> None:
    """One read of the earnings `file` through the tally's queries on the streaming engine:
    the routed rows and the exceptional rows go to files in `folder` as the query runs; then
    the counts and sums are taken over the routed rows, the exceptional rows get their
    exception rows `slice_rows` at a time, and the rows that may share an earning_id are
    settled."""
    folder.mkdir(parents=True, exist_ok=True)
    # The reader runs on a thread of polars: it logs in this stage's context (Prefect's run).
    context = contextvars.copy_context()
    scan = io.TextScan(
        file, lambda rows: context.run(progress.info, f"{file.name}: {rows:,} rows read")
    )
    queries = tally.queries(scan.frame)
    routed = folder / "routed.parquet"
    exceptional = folder / "exceptional.parquet"
    # Two files written as the one read runs (each further query of the read holds more of
    # the file in polars' buffers: four made it 2.8 GB at 10M); the rest runs over them.
    # Parquet, not Arrow: polars maps an Arrow file into memory, and reading a 40M month's
    # rows back counted 2.3 GB more in the peak (lz4: the same CPU, a fifth of the bytes).
    try:
        scan.collect(
            [
                queries.routed.sink_parquet(routed, compression="lz4", lazy=True),
                queries.exceptional.sink_parquet(exceptional, compression="lz4", lazy=True),
            ]
        )
    except OSError as error:
        if scan.failed:
            raise
        raise io.write_error(error, folder) from error
    rows = pl.scan_parquet(routed)
    for batch in rows.select(TALLIED).collect_batches(chunk_size=TALLY_ROWS):
        tally.take_tallies(tallies(batch.lazy()).collect())
    for batch in pl.scan_parquet(exceptional).collect_batches(chunk_size=slice_rows):
        tally.take_exceptional(batch)
    tally.take_ledger(duplicate_candidates(rows))


def keep(run: MonthRun, earnings: Earnings) -> int:
    """Keep the sums and exceptions for stage decide; returns how many exception rows."""
    work.put(run, "earned", earnings.earned)
    work.put(run, "input_sums", earnings.input_sums)
    # Written as the merge of the spilled rows runs: never the month's exceptions whole.
    return work.sink(run, "earnings_exceptions", earnings.exceptions)


def load(run: MonthRun, routed: Routed) -> Earnings:
    """The sums and exceptions stage route kept."""
    return Earnings(
        exceptions=work.scan(run, "earnings_exceptions"),
        earned=work.get(run, "earned"),
        in_scope_rows=routed.in_scope_rows,
        month_rows=routed.month_rows,
        input_sums=work.get(run, "input_sums"),
        rows=routed.rows,
    )
