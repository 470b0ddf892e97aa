"""The input files (docs/inputs.md, "The files"): found in the input folder, identified (a file
replaced or changed while a run reads it stops the run), fingerprinted, and read as text.

Every value is read as text, never type-inferred: a CSV field as written, a Parquet value as its
text. Surrounding spaces are trimmed and an empty value is null (docs/inputs.md).
"""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG

import polars as pl
import pyarrow.parquet as pq
from polars.io.plugins import register_io_source

from coop_rules.vocabulary import OPTIONAL_DATASETS, REQUIRED_DATASETS, ROW_NUMBER, Dataset
from flows.errors import InputRejected, UsageError
from flows.files import sha256_of
from schemas.inputs import INPUTS

SUFFIXES = (".csv", ".parquet")
# A CSV file is read this many bytes at a time (`text_chunks`): about 165,000 earnings rows.
# Measured over the 10M earnings: 16 MB 486-488 MiB peak, 8 MB 428-444, 4 MB 406-416 but up to
# a fifth more CPU; the same CPU from 8 MB up.
CSV_BLOCK_BYTES = 8 * 1024 * 1024
# The blocks of a file read by a streaming query (`TextScan`): polars' engine takes a dozen or so
# ahead of the query. Measured over the 10M earnings: 8 MB 783 MiB peak, 4 MB 618 MiB at 4% more
# CPU, 2 MB 543 MiB at 15% more.
STREAM_BLOCK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class FileIdentity:
    """Which file a path named, and in what state: another file put at the path (an atomic
    rename) has another inode, and a change in place moves the size or the times."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, status: os.stat_result) -> FileIdentity:
        return cls(
            status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns
        )


@dataclass(frozen=True)
class InputFile:
    """One input file of a run, with the identity it had when the run found it.

    The run's sha256 of the file and the rows it reads must come from the same bytes
    (docs/reruns.md, "Safety guarantees"): `input_sha256` hashes the file only while it is still
    that file, and every read ends with `assert_unchanged`.
    """

    dataset: Dataset
    path: Path
    identity: FileIdentity | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.identity is None:
            object.__setattr__(self, "identity", FileIdentity.of(self.path.stat()))

    @property
    def name(self) -> str:
        return self.path.name


def _changed(file: InputFile) -> InputRejected:
    return InputRejected(f"{file.name} changed while the run was reading it; run again")


def assert_unchanged(file: InputFile) -> None:
    """Stop the run (exit 3) unless `file.path` is still the file the run found, unchanged."""
    try:
        now = FileIdentity.of(file.path.stat())
    except FileNotFoundError:
        raise _changed(file) from None
    if now != file.identity:
        raise _changed(file)


def input_sha256(file: InputFile) -> str:
    """The sha256 of the input file the run found, read through one handle; stops the run
    (exit 3) if the path holds another file by then or the file changes while it is hashed."""
    try:
        handle = file.path.open("rb")
    except FileNotFoundError:
        raise _changed(file) from None
    with handle:
        if FileIdentity.of(os.fstat(handle.fileno())) != file.identity:
            raise _changed(file)
        digest = sha256_of(handle)
        if FileIdentity.of(os.fstat(handle.fileno())) != file.identity:
            raise _changed(file)
    return digest


def find_inputs(input_dir: Path) -> dict[Dataset, InputFile]:
    """The input file of each dataset in `input_dir`, with its identity as found now;
    optional datasets may be absent, and every missing required one is named at once."""
    if not input_dir.is_dir():
        raise UsageError(f"--input {input_dir}: no such folder")
    found: dict[Dataset, InputFile] = {}
    missing: list[str] = []
    for dataset in (*REQUIRED_DATASETS, *OPTIONAL_DATASETS):
        paths = [input_dir / f"{dataset.value}{suffix}" for suffix in SUFFIXES]
        present = [file for path in paths if (file := _regular_file(dataset, path))]
        if len(present) > 1:
            raise InputRejected(
                f"{input_dir}: both {present[0].name} and {present[1].name} are present; "
                f"keep one file for {dataset.value}"
            )
        if present:
            found[dataset] = present[0]
        elif dataset in REQUIRED_DATASETS:
            missing.append(f"{dataset.value}.csv")
    if len(missing) == 1:
        raise InputRejected(f"{input_dir}: the required file {missing[0]} (or .parquet) is missing")
    if missing:
        named = f"{', '.join(missing[:-1])} and {missing[-1]}"
        raise InputRejected(
            f"{input_dir}: the required files {named} (each .csv or .parquet) are missing"
        )
    return found


def _regular_file(dataset: Dataset, path: Path) -> InputFile | None:
    """The input file at `path` with its identity, if a regular file is there (as is_file)."""
    try:
        status = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return InputFile(dataset, path, FileIdentity.of(status)) if S_ISREG(status.st_mode) else None


def csv_header(path: Path) -> list[str]:
    """The header row of a CSV file, read with the csv module (quoted names, BOM, CRLF)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle), [])
    except UnicodeDecodeError:
        raise InputRejected(_not_utf8(path)) from None


def _not_utf8(path: Path) -> str:
    """The sentence for a file that is not UTF-8, naming the first line that is not."""
    offset = 0
    with path.open("rb") as handle:
        # A UTF-8 multi-byte sequence never holds the byte of "\n", so lines can be split first.
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return (
                    f"{path.name} is not UTF-8 text: line {number} (byte {offset + exc.start}) "
                    f"holds the byte 0x{line[exc.start]:02x}; save the file as UTF-8"
                )
            offset += len(line)
    return f"{path.name} is not UTF-8 text; save it as UTF-8"


def _check_header(file: InputFile, header: list[str]) -> list[str]:
    """File-level checks of a header; returns the extra columns it holds."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputRejected(f"{file.name}: the header names column '{name}' twice")
        seen.add(name)
    required = INPUTS[file.dataset].columns
    missing = [name for name in required if name not in seen]
    if missing:
        raise InputRejected(f"{file.name}: the required column '{missing[0]}' is missing")
    return [name for name in header if name not in required]


def _normalise(frame: pl.DataFrame, columns: tuple[str, ...], first_row: int = 1) -> pl.DataFrame:
    """Trim surrounding spaces, make empty values null, number the rows from `first_row`."""

    def clean(name: str) -> pl.Expr:
        # One strip per value (a when/then over the stripped text strips it twice).
        return pl.col(name).str.strip_chars().replace("", None).alias(name)

    return frame.select(
        *(clean(name) for name in columns),
        pl.int_range(first_row, first_row + pl.len(), dtype=pl.Int64).alias(ROW_NUMBER),
    )


def read_text(file: InputFile) -> tuple[pl.DataFrame, list[str]]:
    """Read one input file as text: its required columns (nulls for empty), `ROW_NUMBER`, and the
    names of the extra columns it holds (ignored, listed in the manifest).

    A CSV file is read by polars' own reader (`CsvScan`), a Parquet file a batch at a time
    (`text_chunks`). The rows are joined into one chunk per column, once: an eager polars step
    over a frame of many chunks copies it into one, and the caller would hold both copies."""
    extra = input_columns(file)
    columns = INPUTS[file.dataset].columns
    if file.path.suffix == ".csv":
        scan = CsvScan(file)
        (rows,) = scan.collect([scan.frame])
        blank = pl.all_horizontal(pl.col(name).is_null() for name in columns)
        last = last_row(rows.filter(blank).get_column(ROW_NUMBER), rows.height)
        return rows.head(last).rechunk(), extra
    chunks = list(text_chunks(file))
    if not chunks:
        empty = {name: pl.String for name in columns} | {ROW_NUMBER: pl.Int64}
        return pl.DataFrame(schema=empty), extra
    return pl.concat(chunks, rechunk=True), extra


def input_columns(file: InputFile) -> list[str]:
    """File-level checks of the header (or Parquet schema); returns the extra columns."""
    assert_unchanged(file)
    if file.path.suffix == ".parquet":
        try:
            names = pq.read_schema(file.path).names
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise InputRejected(f"{file.name} cannot be read as Parquet: {exc}") from None
        return _check_header(file, names)
    return _check_header(file, csv_header(file.path))


def text_chunks(
    file: InputFile, chunk_rows: int | None = None, block_bytes: int = CSV_BLOCK_BYTES
) -> Iterator[pl.DataFrame]:
    """The rows of one input file as text, in file order, `chunk_rows` at a time (None: as
    read); call `input_columns` first.

    Each chunk holds the required columns (trimmed, null for empty) and `ROW_NUMBER`, numbered
    from 1 over the whole file. Empty records at the end of the file are not rows: a chunk's empty
    tail is held back until a later record shows it is in the middle of the file.

    A CSV file is read `block_bytes` at a time (`_csv_blocks`), so memory holds one block and
    one chunk whatever the size of the file. After each chunk, and after the last, the path
    must still be the file the run found, unchanged (`assert_unchanged`), or the run stops.
    """
    assert_unchanged(file)
    columns = INPUTS[file.dataset].columns
    if file.path.suffix == ".parquet":
        frames = _parquet_batches(file, columns, chunk_rows)
    else:
        frames = _csv_blocks(file, columns, block_bytes)
        if chunk_rows is not None:
            frames = _rows_at_a_time(frames, chunk_rows)
    blank = pl.all_horizontal(pl.col(name).is_null() for name in columns)
    next_row = 1
    held: list[pl.DataFrame] = []
    for frame in frames:
        assert_unchanged(file)
        chunk = _normalise(frame, columns, next_row)
        next_row += chunk.height
        # The last row that is not blank; the rows after it wait for the next chunk.
        last = chunk.select((~blank).arg_true().max()).item()
        if last is None:
            held.append(chunk)
            continue
        body = chunk.head(last + 1)
        yield pl.concat([*held, body]) if held else body
        held = [chunk.slice(last + 1)] if last + 1 < chunk.height else []
    assert_unchanged(file)


class TextScan:
    """One input file's rows as text (`text_chunks`, blocks as read) behind a `LazyFrame`, so
    a query of polars' streaming engine takes them a block at a time: the engine pulls the next
    block when it has room, so the file is never read far ahead of the query (docs/performance.md).

    A query over `frame` runs through `collect`: an error of the reading (a file that cannot
    be read, or that changed) stops it with the reader's own exception, not polars' wrapping
    of it. `on_rows` is told the rows read so far, after each block.

    Stage route reads a Parquet file of earnings so; a CSV file by polars' own reader
    (`CsvScan`), which gives the streaming query the same rows at less CPU.
    """

    def __init__(
        self,
        file: InputFile,
        on_rows: Callable[[int], None] | None = None,
        block_bytes: int = STREAM_BLOCK_BYTES,
    ) -> None:
        self.file = file
        self._block_bytes = block_bytes
        self._on_rows = on_rows
        self._error: BaseException | None = None
        columns = INPUTS[file.dataset].columns
        schema = {name: pl.String() for name in columns} | {ROW_NUMBER: pl.Int64()}
        # Pure: the queries of one run share one read of the file (polars runs it once).
        self.frame = register_io_source(self._blocks, schema=schema, is_pure=True)

    def _blocks(
        self,
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        read = 0
        try:
            for block in text_chunks(self.file, block_bytes=self._block_bytes):
                read += block.height
                if self._on_rows is not None:
                    self._on_rows(read)
                if with_columns is not None:
                    block = block.select(with_columns)
                if predicate is not None:
                    block = block.filter(predicate)
                yield block
                if n_rows is not None and read >= n_rows:
                    return
        except BaseException as error:
            self._error = error
            raise

    @property
    def failed(self) -> bool:
        """Whether reading the file failed (`collect` then raised the reader's error)."""
        return self._error is not None

    def collect(self, queries: Sequence[pl.LazyFrame]) -> list[pl.DataFrame]:
        """Run `queries` (over `frame`) together on the streaming engine."""
        try:
            return pl.collect_all(queries, engine="streaming")
        except BaseException:
            if self._error is not None:
                raise self._error from None
            raise


class CsvScan:
    """One CSV input file's rows as text (trimmed, null for empty, `ROW_NUMBER`) as a lazy
    query of polars' own CSV reader, which the streaming engine runs over the file in parallel
    (docs/performance.md): the same parser as `text_chunks`, the same rows, except that blank
    records at the end of the file are still there (the caller drops them: `last_row`).

    `collect` runs queries over `frame`: the path must be the file the run found, unchanged,
    before and after (a file that changed stops the run, exit 3); a file polars cannot read is
    read again by the block reader, whose sentence names the record that is wrong. `on_rows`
    is told the rows read so far, as the engine reads them.
    """

    def __init__(self, file: InputFile, on_rows: Callable[[int], None] | None = None) -> None:
        self.file = file
        # As `TextScan.failed`: polars' reader fails with a polars error (a file removed while
        # it is read included: tested), so an OSError of `collect` is the caller's writing.
        self.failed = False
        self._on_rows = on_rows
        self._read = 0
        self._lock = threading.Lock()
        columns = INPUTS[file.dataset].columns
        text = pl.scan_csv(file.path, infer_schema=False, raise_if_empty=False).select(columns)
        # Trimmed, then an empty value made null: one strip per value, and an elementwise
        # when/then (`replace("", None)` made the streaming engine hold 1.2 GB at 10M rows).
        trimmed = text.with_columns(pl.col(name).str.strip_chars() for name in columns)
        row = pl.col(ROW_NUMBER).cast(pl.Int64)
        if on_rows is not None:
            row = row.map_batches(self._count, return_dtype=pl.Int64, is_elementwise=True)
        self.frame = (
            trimmed.with_columns(
                pl.when(pl.col(name) != "").then(pl.col(name)).alias(name) for name in columns
            )
            .with_row_index(ROW_NUMBER, offset=1)
            .select(*columns, row.alias(ROW_NUMBER))
        )

    def _count(self, rows: pl.Series) -> pl.Series:
        """Tell `on_rows` the rows read so far (morsels come in any order, on any thread)."""
        last = rows.max()
        if isinstance(last, int):
            with self._lock:
                if last > self._read:
                    self._read = last
                    assert self._on_rows is not None
                    self._on_rows(last)
        return rows

    def collect(self, queries: Sequence[pl.LazyFrame]) -> list[pl.DataFrame]:
        """Run `queries` (over `frame`) together on the streaming engine."""
        assert_unchanged(self.file)
        try:
            frames = pl.collect_all(queries, engine="streaming")
        except pl.exceptions.PolarsError:
            assert_unchanged(self.file)
            # The block reader names what is wrong with the file, as a run read by it would.
            for _ in _csv_blocks(self.file, INPUTS[self.file.dataset].columns, CSV_BLOCK_BYTES):
                pass
            raise
        assert_unchanged(self.file)
        return frames


def last_row(blank_rows: pl.Series, rows: int) -> int:
    """The number of a file's last row, of `rows` records numbered from 1 of which
    `blank_rows` (the numbers of some records, at least every blank one at the end) are blank:
    blank records at the end of a file are not rows (docs/inputs.md)."""
    blank = set(blank_rows.to_list())
    while rows in blank:
        rows -= 1
    return rows


def _parquet_batches(
    file: InputFile, columns: tuple[str, ...], chunk_rows: int | None
) -> Iterator[pl.DataFrame]:
    """A Parquet file's required columns as text, `chunk_rows` at a time."""
    lazy = pl.scan_parquet(file.path).select(columns)
    batches = lazy.collect_batches(chunk_size=chunk_rows, maintain_order=True)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except pl.exceptions.PolarsError as exc:
            reason = str(exc).splitlines()[0]
            raise InputRejected(f"{file.name} cannot be read as Parquet: {reason}") from None
        yield pl.DataFrame([_parquet_text(file, batch, name) for name in columns])


def _csv_blocks(
    file: InputFile, columns: tuple[str, ...], block_bytes: int
) -> Iterator[pl.DataFrame]:
    """A CSV file's required columns as text, one block of about `block_bytes` at a time.

    Each block ends where a record ends (`_records_end`) and is parsed with the file's header
    before it, so every block reads exactly as the same records read in the whole file. Memory
    holds one block: polars' own streaming reader reads ahead of a slow consumer (about 600 MB
    of buffers over a 500 MB file, measured), a block at a time does not.
    """
    header = b""
    carry = b""
    with file.path.open("rb") as handle:
        while True:
            # A record longer than a block: read as much again as is waiting, so a long record
            # costs a few reads, not one per block.
            data = handle.read(max(block_bytes, len(carry)))
            buffer = carry + data
            if not header:
                end = _records_end(buffer, first=True) if data else len(buffer)
                if end == 0 and data:
                    carry = buffer
                    continue
                header, buffer = buffer[:end], buffer[end:]
            end = _records_end(buffer) if data else len(buffer)
            body, carry = buffer[:end], buffer[end:]
            if body or not data:
                yield _parse_block(file, header + body, columns)
            if not data:
                return


def _records_end(buffer: bytes, first: bool = False) -> int:
    """Where the last whole record of `buffer` ends (the first if `first`), just after its
    line end; 0 if none does. `buffer` starts at the start of a record, so a line end closes a
    record when an even number of quotes comes before it (a quote inside a quoted field is
    doubled; polars rejects a file with a stray quote wherever the blocks end)."""
    if first:
        end = buffer.find(b"\n") + 1
        while end and buffer.count(b'"', 0, end) % 2:
            end = buffer.find(b"\n", end) + 1
        return end
    end = buffer.rfind(b"\n") + 1
    quotes = buffer.count(b'"', 0, end)
    while end and quotes % 2:
        before = buffer.rfind(b"\n", 0, end - 1) + 1
        quotes -= buffer.count(b'"', before, end)
        end = before
    return end


def _parse_block(file: InputFile, data: bytes, columns: tuple[str, ...]) -> pl.DataFrame:
    """The required columns of a block of CSV text that starts with the header, as text."""
    try:
        return pl.read_csv(
            data, columns=list(columns), infer_schema=False, raise_if_empty=False
        ).select(columns)
    except pl.exceptions.PolarsError as exc:
        raise InputRejected(_unreadable_csv(file, exc)) from None


def _rows_at_a_time(frames: Iterator[pl.DataFrame], rows: int) -> Iterator[pl.DataFrame]:
    """The rows of `frames`, in order, `rows` at a time (the last chunk may hold fewer)."""
    waiting: list[pl.DataFrame] = []
    count = 0
    for frame in frames:
        waiting.append(frame)
        count += frame.height
        if count < rows:
            continue
        whole = pl.concat(waiting) if len(waiting) > 1 else waiting[0]
        full = count - count % rows
        for start in range(0, full, rows):
            yield whole.slice(start, rows)
        waiting = [whole.slice(full)] if full < count else []
        count -= full
    if count:
        yield pl.concat(waiting)


def _unreadable_csv(file: InputFile, exc: pl.exceptions.PolarsError) -> str:
    """The sentence for a CSV file polars cannot read, naming the record where it can."""
    reason = str(exc).splitlines()[0]
    if "utf-8" in reason.lower() or "utf8" in reason.lower():
        return _not_utf8(file.path)
    if isinstance(exc, pl.exceptions.ColumnNotFoundError):
        # The csv module found the header's columns and polars did not: a lone CR line end.
        return (
            f"{file.name} cannot be read as CSV: its header does not split into the columns "
            "it names; lines must end in LF or CRLF"
        )
    if "not properly escaped" in str(exc):
        return f"{file.name} cannot be read as CSV: a quoted field is not closed by a quote"
    if "more fields" in reason:
        ragged = _ragged_record(file.path)
        if ragged is not None:
            row, fields, width = ragged
            return (
                f"{file.name} row {row} has {fields} fields but the header names {width} "
                "columns; the file cannot be read"
            )
    return f"{file.name} cannot be read as CSV: {reason}"


def _ragged_record(path: Path) -> tuple[int, int, int] | None:
    """(row number, fields, header width) of the first record longer than the header."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        width = len(next(reader, []))
        for row, record in enumerate(reader, start=1):
            if len(record) > width:
                return row, len(record), width
    return None


# Trailing zeros of a fraction, and a fraction of zeros, are not part of a number's shortest text.
ZERO_FRACTION = r"^([+-]?[0-9]+)\.0*$"
TRAILING_ZEROS = r"^([+-]?[0-9]*\.[0-9]*[1-9])0+$"


def _parquet_text(file: InputFile, frame: pl.DataFrame, name: str) -> pl.Series:
    """The text of each value of a typed Parquet column (docs/inputs.md, "How a file is read").

    A number is read as its shortest exact text: float 5000.0 and Decimal 5000.00 read as
    5000, so a JPY amount typed as a float or decimal fits its currency; 12.345 stays 12.345.
    """
    dtype = frame.schema[name]
    if dtype.is_nested():
        raise InputRejected(
            f"{file.name}: column '{name}' holds {dtype} values; a value must be a single "
            "number, date or text"
        )
    column = pl.col(name)
    if dtype == pl.Date:
        text = column.dt.strftime("%Y-%m-%d")
    elif dtype.is_float() or dtype.is_decimal():
        text = (
            column.cast(pl.String)
            .str.replace(ZERO_FRACTION, "${1}")
            .str.replace(TRAILING_ZEROS, "${1}")
        )
    else:
        text = column.cast(pl.String)
    try:
        return frame.select(text.alias(name)).to_series()
    except pl.exceptions.PolarsError:
        raise InputRejected(
            f"{file.name}: column '{name}' ({dtype}) cannot be read as text; "
            "write it as UTF-8 text, numbers or dates"
        ) from None
