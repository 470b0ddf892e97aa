"""Messy CSV feeds (docs/inputs.md, "How a file is read"): every record is read and numbered as a
person counts records, or the whole file is rejected with a sentence naming it (exit 3, nothing
published).

Decisions pinned here (docs/inputs.md lists them):
- surrounding whitespace of every value is trimmed, quoted or not: ' 100.00 ' reads as 100.00;
- an empty line at the end of a file is not a record (nor a last line of spaces or commas);
- an empty line in the middle is a record with every value empty: polars keeps it, so it is
  reported (MISSING_VALUE per required column) and later rows keep the numbers a person counts
  in a spreadsheet, where the empty line is a row too.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from coop_rules.vocabulary import ROW_NUMBER, Code, Dataset
from flows.errors import InputRejected
from flows.reading import CsvScan, InputFile, find_inputs, last_row, read_text, text_chunks
from schemas.inputs import INPUTS
from tests.flows.messy_inputs import (
    PLAN_USD,
    copy_sample,
    csv_text,
    earning,
    minimal_files,
    nothing_published,
    run,
    write_folder,
)

HEADER = ",".join(INPUTS[Dataset.EARNINGS].columns)
E1 = "E-1,4412907,Azure Co-op,Marketing,2026-04,1000.00,USD"
E2 = "E-2,4412907,Azure Co-op,Marketing,2026-04,250.00,USD"
MEGABYTE = 1024 * 1024


def _read(tmp_path: Path, data: bytes) -> pl.DataFrame:
    path = tmp_path / "earnings.csv"
    path.write_bytes(data)
    frame, _ = read_text(InputFile(Dataset.EARNINGS, path))
    return frame


# (file bytes, expected rows: row_number -> {column: value}, expected row count)
READ_CASES = [
    pytest.param(
        f'{HEADER}\nE-1,4412907,"Azure Co-op, EMEA\nWest",Marketing,2026-04,1000.00,USD\n{E2}\n',
        {1: {"program": "Azure Co-op, EMEA\nWest"}, 2: {"earning_id": "E-2"}},
        2,
        id="quoted-field-holding-a-comma-and-a-newline-is-one-record",
    ),
    pytest.param(
        f'{HEADER}\r\nE-1,4412907,"Azure\r\nCo-op",Marketing,2026-04,1000.00,USD\r\n{E2}\r\n',
        {1: {"program": "Azure\r\nCo-op"}, 2: {"earning_id": "E-2", "currency": "USD"}},
        2,
        id="quoted-crlf-inside-a-crlf-file-is-kept-in-the-value",
    ),
    pytest.param(
        f"\ufeff{HEADER}\n{E1}\n",
        {1: {"earning_id": "E-1"}},
        1,
        id="utf8-bom-is-not-part-of-the-first-column-name",
    ),
    pytest.param(
        f"{HEADER}\r\n{E1}\r\n{E2}\r\n",
        {1: {"currency": "USD"}, 2: {"currency": "USD", "earning_id": "E-2"}},
        2,
        id="crlf-line-ends-leave-no-carriage-return-in-values",
    ),
    pytest.param(
        f"\ufeff{HEADER}\r\n{E1}\r\n",
        {1: {"earning_id": "E-1", "currency": "USD"}},
        1,
        id="bom-and-crlf-together",
    ),
    pytest.param(f"{HEADER}\n{E1}\n\n", {1: {"earning_id": "E-1"}}, 1, id="trailing-empty-line"),
    pytest.param(
        f"{HEADER}\r\n{E1}\r\n\r\n\r\n",
        {1: {"earning_id": "E-1"}},
        1,
        id="several-trailing-empty-crlf-lines",
    ),
    pytest.param(
        f"{HEADER}\n{E1}\n   \n",
        {1: {"earning_id": "E-1"}},
        1,
        id="trailing-line-of-spaces-is-not-a-record",
    ),
    pytest.param(
        f"{HEADER}\n{E1}\n,,,,,,\n",
        {1: {"earning_id": "E-1"}},
        1,
        id="trailing-line-of-commas-is-not-a-record",
    ),
    pytest.param(f"{HEADER}\n{E1}", {1: {"amount": "1000.00"}}, 1, id="no-line-end-after-last"),
    pytest.param(f"{HEADER}\n", {}, 0, id="header-only-is-an-empty-dataset"),
    pytest.param(
        f"{HEADER}\n{E1}\n\n{E2}\n",
        {
            1: {"earning_id": "E-1"},
            2: dict.fromkeys(INPUTS[Dataset.EARNINGS].columns),
            3: {"earning_id": "E-2"},
        },
        3,
        id="blank-line-in-the-middle-is-an-empty-record-and-numbers-stay",
    ),
    pytest.param(
        f'{HEADER}\nE-1,4412907,"{"x" * MEGABYTE}",Marketing,2026-04,1000.00,USD\n{E2}\n',
        {1: {"amount": "1000.00"}, 2: {"earning_id": "E-2", "program": "Azure Co-op"}},
        2,
        id="field-of-a-megabyte",
    ),
    pytest.param(
        f"{HEADER}\n E-1 , 4412907 ,Azure Co-op , Marketing,\t2026-04\t, 100.00 ,USD \n",
        {
            1: {
                "earning_id": "E-1",
                "mpn_id": "4412907",
                "program": "Azure Co-op",
                "fund": "Marketing",
                "earning_month": "2026-04",
                "amount": "100.00",
                "currency": "USD",
            }
        },
        1,
        id="stray-spaces-and-tabs-are-trimmed",
    ),
    pytest.param(
        f'{HEADER}\nE-1,4412907,Azure Co-op,Marketing,2026-04," 100.00 ",USD\n',
        {1: {"amount": "100.00"}},
        1,
        id="spaces-inside-quotes-are-trimmed-too",
    ),
    pytest.param(
        f"{HEADER}\nE-1,4412907,Azure Co-op,Marketing,2026-04,\u00a0100.00\u00a0,USD\n",
        {1: {"amount": "100.00"}},
        1,
        id="no-break-spaces-are-trimmed",
    ),
    pytest.param(
        f"{HEADER}\nE-1,4412907,Azure Co-op,,2026-04,  ,USD\n",
        {1: {"fund": None, "amount": None}},
        1,
        id="empty-and-blank-values-are-null",
    ),
    pytest.param(
        f"{HEADER}\nE-1,4412907,Azure Co-op\n",
        {1: {"program": "Azure Co-op", "fund": None, "currency": None}},
        1,
        id="record-shorter-than-header-reads-missing-values-as-null",
    ),
]


@pytest.mark.parametrize(("content", "expected", "height"), READ_CASES)
def test_read_text_counts_records_and_reads_values(
    tmp_path: Path, content: str, expected: dict[int, dict[str, str | None]], height: int
) -> None:
    frame = _read(tmp_path, content.encode("utf-8"))
    assert frame.height == height
    assert frame.get_column(ROW_NUMBER).to_list() == list(range(1, height + 1))
    assert all(frame.schema[name] == pl.String for name in INPUTS[Dataset.EARNINGS].columns)
    for row, values in expected.items():
        record = frame.filter(pl.col(ROW_NUMBER) == row).row(0, named=True)
        for column, value in values.items():
            assert record[column] == value, (row, column)


@pytest.mark.parametrize("chunk_rows", [1, 2, 3])
@pytest.mark.parametrize(
    "content",
    [
        *(case.values[0] for case in READ_CASES),
        f"{HEADER}\n{E1}\n\n\n{E2}\n\n\n",
        f"{HEADER}\n{E1}\n   \n{E2}\n  \n\n",
    ],
)
@pytest.mark.parametrize("block_bytes", [1, 7, 64, MEGABYTE])
def test_chunks_of_a_file_are_the_file(
    tmp_path: Path, content: str, chunk_rows: int, block_bytes: int
) -> None:
    """Earnings are read a block of bytes and a chunk of rows at a time: the chunks, in order,
    are the rows read_text gives, numbered the same, wherever the blocks end (inside a quoted
    field, a CRLF, a multi-byte character); blank records at the end are dropped wherever the
    chunks end."""
    whole = _read(tmp_path, content.encode("utf-8"))
    file = InputFile(Dataset.EARNINGS, tmp_path / "earnings.csv")
    chunks = list(text_chunks(file, chunk_rows, block_bytes))
    assert all(chunk.height for chunk in chunks)
    assert (pl.concat(chunks) if chunks else whole.clear()).equals(whole)


def test_field_of_a_megabyte_is_read_whole(tmp_path: Path) -> None:
    big = "x" * MEGABYTE
    frame = _read(tmp_path, f'{HEADER}\nE-1,4412907,"{big}",Marketing,2026-04,1,USD\n'.encode())
    assert frame.get_column("program").str.len_chars().to_list() == [MEGABYTE]


def test_extra_columns_are_listed_not_read(tmp_path: Path) -> None:
    path = tmp_path / "earnings.csv"
    path.write_text(f'"note",{HEADER},"batch"\nhello,{E1},7\n', encoding="utf-8")
    frame, extra = read_text(InputFile(Dataset.EARNINGS, path))
    assert extra == ["note", "batch"]
    assert "note" not in frame.columns
    assert frame.row(0, named=True)["earning_id"] == "E-1"


def _sample_exceptions(frame: pl.DataFrame) -> set[tuple]:
    return set(frame.select("source", "row_number", "record_key", "code", "column").iter_rows())


def test_row_number_counts_records_after_a_multi_line_record(tmp_path: Path) -> None:
    """A quoted comma and line break in an April row (file line != record number after it):
    every exception keeps the record number CASES.md gives, e.g. NaN at row 205 (line 207)."""
    changed = copy_sample(tmp_path / "changed")
    path = changed / "earnings.csv"
    text = path.read_text(encoding="utf-8")
    row = "ERN-2604-0017,8823014,Surface Co-op,Marketing"
    assert text.count(row) == 1
    path.write_text(
        text.replace(row, 'ERN-2604-0017,8823014,"Surface Co-op,\nEMEA",Marketing'),
        encoding="utf-8",
    )
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines.index("ERN-2604-0082,9140032,Azure Co-op,Marketing,2026-04,NaN,GBP") + 1 == 207

    before = run(copy_sample(tmp_path / "sample"), tmp_path / "out-sample")
    after = run(changed, tmp_path / "out-changed")

    nan = after.exceptions.filter(pl.col("record_key") == "ERN-2604-0082")
    assert nan.select("row_number", "code", "column", "value").rows() == [
        (205, Code.INVALID_VALUE.value, "amount", "NaN")
    ]
    # A program is a code, not free text: the line break inside it is INVALID_VALUE.
    moved = after.exceptions.filter(pl.col("record_key") == "ERN-2604-0017")
    assert moved.select("row_number", "code", "column").rows() == [
        (139, Code.INVALID_VALUE.value, "program")
    ]
    assert "Surface Co-op,<U+000A>EMEA" in moved.item(0, "message")
    # The same rows, codes and columns as the sample itself: nothing shifted, nothing lost.
    others = pl.col("record_key") != "ERN-2604-0017"
    assert _sample_exceptions(after.exceptions.filter(others)) == _sample_exceptions(
        before.exceptions.filter(others)
    )
    # The sample's own multi-line record (activities ACT-5019) shifts lines, not row numbers.
    orphan = after.exceptions_of("activities").filter(pl.col("record_key") == "ACT-5063")
    assert orphan.select("row_number", "code").rows() == [(63, Code.UNKNOWN_REFERENCE.value)]


def test_blank_line_in_the_middle_is_reported_not_lost(tmp_path: Path) -> None:
    files = minimal_files()
    files["earnings.csv"] = f"{HEADER}\n{E1}\n\nE-2,4412907,Azure Co-op,Marketing,2026-04,x,USD\n"
    published = run(write_folder(tmp_path / "in", files), tmp_path / "out")

    earnings = published.exceptions_of("earnings")
    blank = earnings.filter(pl.col("row_number") == 2)
    assert sorted(blank.get_column("column").to_list()) == sorted(INPUTS[Dataset.EARNINGS].columns)
    assert set(blank.get_column("code")) == {Code.MISSING_VALUE.value}
    assert blank.get_column("record_key").is_null().all()
    after = earnings.filter(pl.col("row_number") == 3)
    assert after.select("record_key", "code", "column", "value").rows() == [
        ("E-2", Code.INVALID_VALUE.value, "amount", "x")
    ]
    # Its month is empty, so it belongs to no month: every run reports it, never lost
    # (docs/inputs.md, "Hostile input").
    reconciliation = published.reconciliation
    assert (reconciliation.in_scope_rows, reconciliation.routed_rows) == (3, 1)
    assert reconciliation.exception_rows == 2
    assert reconciliation.holds


@pytest.mark.parametrize("tail", ["\n\n", "   \n\n", ",,,,,,\n", "\n  \n,,,,,,\n\n"])
def test_blank_records_at_the_end_of_the_earnings_are_not_rows(tmp_path: Path, tail: str) -> None:
    """Stage route drops the blank records at the end of the file after its streaming query:
    they are neither exceptions nor counted rows, and the rows before them are all taken."""
    files = minimal_files()
    files["earnings.csv"] = (
        f"{HEADER}\n{E1}\n\nE-2,4412907,Azure Co-op,Marketing,2026-04,x,USD\n{tail}"
    )
    published = run(write_folder(tmp_path / "in", files), tmp_path / "out")

    earnings = published.exceptions_of("earnings")
    assert sorted(set(earnings.get_column("row_number"))) == [2, 3]
    reconciliation = published.reconciliation
    assert (reconciliation.in_scope_rows, reconciliation.routed_rows) == (3, 1)
    assert reconciliation.holds


def test_blank_line_in_the_middle_of_plans_keeps_later_plans_numbered(tmp_path: Path) -> None:
    files = minimal_files()
    plans_header, first_plan, *rest = str(files["plans.csv"]).splitlines()
    files["plans.csv"] = "\n".join([plans_header, "", first_plan, *rest]) + "\n"
    published = run(write_folder(tmp_path / "in", files), tmp_path / "out")

    plans = published.exceptions_of("plans")
    assert set(plans.get_column("row_number")) == {1}
    assert set(plans.get_column("code")) == {Code.MISSING_VALUE.value}
    # PL-1 is record 2 now and still pays: the blank record took no part.
    assert published.payouts.select("plan_id", "earned_amount", "outcome").rows() == [
        ("PL-1", Decimal("1000.00"), "PAY")
    ]


def _latin1_programs() -> bytes:
    return "program,period,period_start,period_end\nCafé Co-op,FY26,2025-07-01,2026-06-30\n".encode(
        "latin-1"
    )


def _both_earnings(folder: Path) -> None:
    pl.read_csv(folder / "earnings.csv", infer_schema=False).write_parquet(
        folder / "earnings.parquet"
    )


# (file name, new content or None to delete, or a function changing the folder; words the
# sentence must hold)
REJECTED_CASES = [
    pytest.param(
        "earnings.csv",
        f"{HEADER},amount\n{E1},1.00\n",
        ["earnings.csv", "'amount'", "twice"],
        id="header-names-a-required-column-twice",
    ),
    pytest.param(
        "earnings.csv",
        f"{HEADER},note,note\n{E1},a,b\n",
        ["earnings.csv", "'note'", "twice"],
        id="header-names-an-extra-column-twice",
    ),
    pytest.param(
        "plans.csv",
        csv_text(
            Dataset.PLANS,
            [PLAN_USD[:7] + PLAN_USD[8:]],
            header=[c for c in INPUTS[Dataset.PLANS].columns if c != "reviewer_email"],
        ),
        ["plans.csv", "'reviewer_email'", "missing"],
        id="missing-required-column",
    ),
    pytest.param(
        "programs.csv",
        _latin1_programs(),
        ["programs.csv", "not UTF-8", "line 2"],
        id="latin-1-file-is-not-utf8",
    ),
    pytest.param(
        "earnings.csv",
        f"{HEADER}\n{E1}\n".encode("utf-16"),
        ["earnings.csv", "not UTF-8"],
        id="utf-16-file-is-not-utf8",
    ),
    pytest.param(
        "earnings.csv",
        _both_earnings,
        ["earnings.csv", "earnings.parquet"],
        id="both-csv-and-parquet-for-one-dataset",
    ),
    pytest.param(
        "plan_limits.csv", None, ["plan_limits.csv", "missing"], id="missing-required-file"
    ),
    pytest.param(
        "payment_profiles.csv",
        None,
        ["payment_profiles.csv", "missing"],
        id="missing-payment_profiles-file",
    ),
    pytest.param(
        "earnings.csv",
        f"{HEADER}\r{E1}\r",
        ["earnings.csv", "LF or CRLF"],
        id="lone-carriage-return-line-ends",
    ),
    pytest.param(
        "earnings.csv",
        f"{HEADER}\n{E1}\n{E2},surplus\n",
        ["earnings.csv", "row 2", "8 fields", "7 columns"],
        id="record-longer-than-the-header-names-its-row",
    ),
    pytest.param(
        "earnings.csv",
        f'{HEADER}\nE-1,4412907,"Azure Co-op,Marketing,2026-04,1000.00,USD\n',
        ["earnings.csv", "quote"],
        id="quoted-field-never-closed",
    ),
    pytest.param("earnings.csv", b"", ["earnings.csv", "'earning_id'", "missing"], id="empty-file"),
    pytest.param(
        "earnings.parquet",
        b"PAR1 not really parquet PAR1",
        ["earnings.parquet", "cannot be read as Parquet"],
        id="damaged-parquet-file",
    ),
]


@pytest.mark.parametrize(("name", "change", "words"), REJECTED_CASES)
def test_file_level_problems_reject_the_run_and_publish_nothing(
    tmp_path: Path, name: str, change: object, words: list[str]
) -> None:
    folder = write_folder(tmp_path / "in", minimal_files())
    if name.endswith(".parquet"):
        (folder / name.replace(".parquet", ".csv")).unlink()
    if change is None:
        (folder / name).unlink()
    elif callable(change):
        change(folder)
    else:
        content = change if isinstance(change, bytes) else str(change).encode("utf-8")
        (folder / name).write_bytes(content)
    output = tmp_path / "out"

    with pytest.raises(InputRejected) as raised:
        run(folder, output)

    assert raised.value.exit_code == 3
    sentence = str(raised.value)
    for word in words:
        assert word in sentence
    assert "\n" not in sentence.strip()
    assert nothing_published(output)


def test_stray_spaces_around_an_amount_pay_the_trimmed_amount(tmp_path: Path) -> None:
    """' 100.00 ' reads as 100.00 (a decision: surrounding whitespace is trimmed)."""
    files = minimal_files([earning(amount=" 100.00 "), earning(" E-2 ", "\t250.50 ")])
    published = run(write_folder(tmp_path / "in", files), tmp_path / "out")
    assert published.exceptions_of("earnings").is_empty()
    assert published.payouts.select("earnings_count", "earned_amount", "payable_amount").rows() == [
        (2, Decimal("350.50"), Decimal("350.50"))
    ]


# --- The payment_profiles file: required like the reference files ---------------------------


def test_payment_profiles_file_is_read_as_text(tmp_path: Path) -> None:
    files = minimal_files()
    row = ("4412907", "Action required", "2026-01-15")
    files["payment_profiles.csv"] = csv_text(Dataset.PAYMENT_PROFILES, [row])
    found = find_inputs(write_folder(tmp_path / "in", files))
    profiles, extras = read_text(found[Dataset.PAYMENT_PROFILES])
    assert profiles.drop(ROW_NUMBER).rows() == [("4412907", "Action required", "2026-01-15")]
    assert extras == []


def test_payment_profiles_in_both_forms_is_a_file_level_error(tmp_path: Path) -> None:
    files = minimal_files()
    files["payment_profiles.csv"] = csv_text(Dataset.PAYMENT_PROFILES, [])
    folder = write_folder(tmp_path / "in", files)
    (folder / "payment_profiles.parquet").write_bytes(b"")
    with pytest.raises(InputRejected, match="payment_profiles"):
        find_inputs(folder)


@pytest.mark.parametrize("block_bytes", [1, 7, 64, MEGABYTE])
@pytest.mark.parametrize(
    "content",
    [
        f'{HEADER}\n{E1}\nE-2,44"12907,Azure Co-op,Marketing,2026-04,250.00,USD\n{E1}\n',
        f'{HEADER}\nE-"1,4412907,Azure Co-op,Marketing,2026-04,1.00,USD\n{E2}\n'
        f'E-3,4412907,Azure Co-op,Mark"eting,2026-04,2.00,USD\n',
    ],
    ids=["one-stray-quote", "two-stray-quotes-in-different-records"],
)
def test_stray_quote_rejects_the_file_wherever_the_blocks_end(
    tmp_path: Path, content: str, block_bytes: int
) -> None:
    """A quote inside an unquoted value is not CSV: the file is rejected, with its name,
    however it is cut into blocks (a block never ends inside a quoted field)."""
    path = tmp_path / "earnings.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputRejected) as raised:
        list(text_chunks(InputFile(Dataset.EARNINGS, path), 2, block_bytes))
    assert "earnings.csv cannot be read as CSV" in str(raised.value)


def test_a_record_longer_than_a_block_costs_a_few_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record longer than a block is read by growing reads, not a block at a time onto a
    growing buffer (which copied the buffer once per block: quadratic in the record's size)."""
    path = tmp_path / "earnings.csv"
    path.write_text(
        f'{HEADER}\nE-1,4412907,"{"x" * MEGABYTE}",Marketing,2026-04,1,USD\n{E2}\n',
        encoding="utf-8",
    )
    reads: list[int] = []
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, *args, **kwargs)
        real_read = handle.read

        def read(size: int = -1) -> bytes:
            reads.append(size)
            return real_read(size)

        handle.read = read  # type: ignore[method-assign]
        return handle

    monkeypatch.setattr(Path, "open", counting_open)
    chunks = list(text_chunks(InputFile(Dataset.EARNINGS, path), 2, block_bytes=1024))
    assert pl.concat(chunks).get_column("program").str.len_chars().to_list()[0] == MEGABYTE
    assert len(reads) < 40, len(reads)


def test_a_file_read_whole_is_one_piece_of_memory(tmp_path: Path) -> None:
    """read_text joins the blocks it read into one chunk per column: an eager polars step over
    a frame in many chunks (adding the OK column, say) copies every column into one first, and
    the caller then holds both copies (1M plans: 190 MB more, measured)."""
    rows = 10 * 1024 * 1024 // len(E2) + 1  # more than one block of CSV_BLOCK_BYTES
    path = tmp_path / "earnings.csv"
    path.write_text(HEADER + "\n" + f"{E2}\n" * rows, encoding="utf-8")
    frame, _ = read_text(InputFile(Dataset.EARNINGS, path))
    assert frame.height == rows
    assert set(frame.n_chunks("all")) == {1}


def _scanned(path: Path, on_rows: list[int] | None = None) -> pl.DataFrame:
    """The rows of `path` as stage route reads a CSV file: polars' own reader in a streaming
    query (`CsvScan`), then the blank records at the end dropped (`last_row`)."""
    scan = CsvScan(InputFile(Dataset.EARNINGS, path), None if on_rows is None else on_rows.append)
    (frame,) = scan.collect([scan.frame])
    blank = pl.all_horizontal(pl.col(c).is_null() for c in INPUTS[Dataset.EARNINGS].columns)
    last = last_row(frame.filter(blank).get_column(ROW_NUMBER), frame.height)
    return frame.filter(pl.col(ROW_NUMBER) <= last)


@pytest.mark.parametrize(
    "content",
    [
        *(case.values[0] for case in READ_CASES),
        f"{HEADER}\n{E1}\n\n\n{E2}\n\n\n",
        f"{HEADER}\n{E1}\n   \n{E2}\n  \n\n",
        f"{HEADER}\n\n,,,,,,\n\n",
        f"{HEADER}\n,,,,,,\n{E1}\n",
    ],
)
def test_polars_reader_reads_the_rows_the_block_reader_reads(tmp_path: Path, content: str) -> None:
    """Stage route reads a CSV file of earnings with polars' own reader: the same rows, values
    and numbers as the block reader, once the blank records at the end are dropped."""
    path = tmp_path / "earnings.csv"
    path.write_text(content, encoding="utf-8")
    blocks = list(text_chunks(InputFile(Dataset.EARNINGS, path), block_bytes=64))
    whole = pl.concat(blocks) if blocks else _read(tmp_path, content.encode("utf-8")).clear()
    read: list[int] = []
    scanned = _scanned(path, read)
    assert scanned.equals(whole)
    assert max(read, default=0) >= whole.height


@pytest.mark.parametrize(
    "content",
    [
        f'{HEADER}\nE-"1,4412907,Azure Co-op,Marketing,2026-04,1.00,USD\n{E2}\n'.encode(),
        f'{HEADER}\nE-1,4412907,"Azure Co-op,Marketing,2026-04,1.00,USD\n{E2}\n'.encode(),
        f"{HEADER}\n{E1},extra\n".encode(),
        f"{HEADER}\n{E1}\n".encode().replace(b"Azure", b"Az\xffre"),
    ],
    ids=["stray-quote", "unclosed-quote", "record-longer-than-the-header", "not-utf8"],
)
def test_a_file_polars_cannot_read_gets_the_block_readers_sentence(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "earnings.csv"
    path.write_bytes(content)
    with pytest.raises(InputRejected) as expected:
        list(text_chunks(InputFile(Dataset.EARNINGS, path)))
    with pytest.raises(InputRejected) as raised:
        read_text(InputFile(Dataset.EARNINGS, path))
    assert str(raised.value) == str(expected.value)
