"""An input file replaced or changed while the run reads it
(docs/reruns.md, "Safety guarantees").

The manifest's sha256 of an input is of the bytes the run read: a file swapped by an atomic
rename, or written in place, between the moment the run finds it and its last read stops the
run (exit 3, one sentence naming the file), and nothing is published.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from coop_rules.vocabulary import Dataset
from flows import files, reading
from flows.errors import InputRejected
from tests.flows.messy_inputs import (
    csv_text,
    earning,
    minimal_files,
    nothing_published,
    run,
    write_folder,
)

CHANGED = "changed while the run was reading it; run again"
OLD_ROWS = [earning("E-1", "1000.00"), earning("E-2", "250.00")]
NEW_ROWS = [earning("E-1", "1000.00"), earning("E-2", "9250.00"), earning("E-3", "40.00")]


def _folder(tmp_path: Path, suffix: str = ".csv") -> Path:
    folder = write_folder(tmp_path / "in", minimal_files(OLD_ROWS))
    if suffix == ".parquet":
        earnings = folder / "earnings.csv"
        pl.read_csv(earnings, infer_schema=False).write_parquet(folder / "earnings.parquet")
        earnings.unlink()
    return folder


def _replace(folder: Path, name: str, rows: list[tuple[str, ...]] = NEW_ROWS) -> bytes:
    """Replace `name` in `folder` by an atomic rename, as a sender's upload does; returns
    the new bytes."""
    staged = folder.parent / f"staged-{name}"
    if name.endswith(".parquet"):
        pl.read_csv(csv_text(Dataset.EARNINGS, rows).encode(), infer_schema=False).write_parquet(
            staged
        )
    else:
        staged.write_text(csv_text(Dataset.EARNINGS, rows), encoding="utf-8")
    data = staged.read_bytes()
    os.replace(staged, folder / name)
    return data


def _append(path: Path) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(",".join(earning("E-9", "5.00")) + "\n")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_read_unchanged_is_hashed_and_read_whole(tmp_path: Path, suffix: str) -> None:
    file = reading.find_inputs(_folder(tmp_path, suffix))[Dataset.EARNINGS]
    assert reading.input_sha256(file) == hashlib.sha256(file.path.read_bytes()).hexdigest()
    assert sum(chunk.height for chunk in reading.text_chunks(file, 1)) == 2


@pytest.mark.parametrize(
    ("suffix", "change"),
    [
        pytest.param(".csv", "rename", id="csv-replaced-by-rename"),
        pytest.param(".parquet", "rename", id="parquet-replaced-by-rename"),
        pytest.param(".csv", "append", id="csv-written-in-place"),
        pytest.param(".csv", "delete", id="csv-deleted"),
    ],
)
def test_a_file_changed_after_it_was_found_is_not_hashed(
    tmp_path: Path, suffix: str, change: str
) -> None:
    folder = _folder(tmp_path, suffix)
    file = reading.find_inputs(folder)[Dataset.EARNINGS]
    if change == "rename":
        _replace(folder, file.name)
    elif change == "append":
        _append(file.path)
    else:
        file.path.unlink()
    with pytest.raises(InputRejected, match=f"^{file.name} {CHANGED}$"):
        reading.input_sha256(file)
    with pytest.raises(InputRejected, match=f"^{file.name} {CHANGED}$"):
        list(reading.text_chunks(file))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_replaced_between_the_fingerprint_and_the_read_stops_the_read(
    tmp_path: Path, suffix: str
) -> None:
    folder = _folder(tmp_path, suffix)
    file = reading.find_inputs(folder)[Dataset.EARNINGS]
    reading.input_sha256(file)
    _replace(folder, file.name)
    with pytest.raises(InputRejected, match=f"^{file.name} {CHANGED}$"):
        reading.read_text(file)


@pytest.mark.parametrize(
    ("suffix", "change"),
    [
        pytest.param(".csv", "rename", id="csv-replaced-by-rename"),
        pytest.param(".parquet", "rename", id="parquet-replaced-by-rename"),
        pytest.param(".csv", "append", id="csv-written-in-place"),
    ],
)
def test_a_file_changed_while_its_chunks_are_read_stops_the_read(
    tmp_path: Path, suffix: str, change: str
) -> None:
    folder = _folder(tmp_path, suffix)
    file = reading.find_inputs(folder)[Dataset.EARNINGS]
    chunks = reading.text_chunks(file, 1)
    assert next(chunks).item(0, "earning_id") == "E-1"
    if change == "rename":
        _replace(folder, file.name)
    else:
        _append(file.path)
    with pytest.raises(InputRejected, match=f"^{file.name} {CHANGED}$"):
        list(chunks)


def test_a_file_replaced_while_it_is_hashed_is_not_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path)
    file = reading.find_inputs(folder)[Dataset.EARNINGS]
    real = hashlib.sha256

    class SwapOnFirstUpdate:
        """A sha256 whose first update replaces the file, as an upload landing mid-hash."""

        def __init__(self) -> None:
            self.digest, self.swapped = real(), False

        def update(self, data: bytes) -> None:
            if not self.swapped:
                self.swapped = True
                _replace(folder, file.name)
            self.digest.update(data)

        def hexdigest(self) -> str:
            return self.digest.hexdigest()

    monkeypatch.setattr(files.hashlib, "sha256", SwapOnFirstUpdate)
    with pytest.raises(InputRejected, match=f"^{file.name} {CHANGED}$"):
        reading.input_sha256(file)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_run_whose_earnings_are_replaced_after_fingerprinting_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """The tester's case: earnings.csv swapped once it was fingerprinted, before its rows are
    read. The run stops with exit 3; a run afterwards records the sha256 of the new bytes."""
    folder = _folder(tmp_path, suffix)
    name = f"earnings{suffix}"
    read = reading.text_chunks
    scan = reading.CsvScan
    new_bytes: list[bytes] = []

    def swap_then_read(
        file: reading.InputFile, chunk_rows: int | None = None, **options: int
    ) -> Iterator:
        if file.name == name and not new_bytes:
            new_bytes.append(_replace(folder, name))
        return read(file, chunk_rows, **options)

    class SwapThenScan(reading.CsvScan):
        def __init__(self, file: reading.InputFile, *args: Any) -> None:
            if file.name == name and not new_bytes:
                new_bytes.append(_replace(folder, name))
            super().__init__(file, *args)

    monkeypatch.setattr(reading, "text_chunks", swap_then_read)
    monkeypatch.setattr(reading, "CsvScan", SwapThenScan)
    out = tmp_path / "out"
    with pytest.raises(InputRejected, match=f"^{name} {CHANGED}$") as rejected:
        run(folder, out)
    assert rejected.value.exit_code == 3
    assert nothing_published(out)

    monkeypatch.setattr(reading, "text_chunks", read)
    monkeypatch.setattr(reading, "CsvScan", scan)
    published = run(folder, out)
    assert published.outcome.manifest.inputs["earnings"].sha256 == (
        hashlib.sha256(new_bytes[0]).hexdigest()
    )
    assert published.payouts.select("earnings_count").item() == len(NEW_ROWS)


@pytest.mark.parametrize("change", ["rename", "append", "remove"])
def test_a_csv_file_changed_while_polars_reads_it_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """polars' own reader takes the CSV earnings in one streaming query: a file replaced,
    written or removed while that query runs is caught, and nothing is published."""
    folder = _folder(tmp_path)
    collect_all = pl.collect_all
    changed: list[str] = []

    def change_then_collect(*args: Any, **kwargs: Any) -> Any:
        if not changed:
            changed.append(change)
            if change == "rename":
                _replace(folder, "earnings.csv")
            elif change == "append":
                _append(folder / "earnings.csv")
            else:
                (folder / "earnings.csv").unlink()
        return collect_all(*args, **kwargs)

    monkeypatch.setattr(reading.pl, "collect_all", change_then_collect)
    out = tmp_path / "out"
    with pytest.raises(InputRejected, match=f"^earnings.csv {CHANGED}$") as rejected:
        run(folder, out)
    assert changed == [change]
    assert rejected.value.exit_code == 3
    assert nothing_published(out)
