"""Stage route checks several chunks of earnings at the same time and keeps them in file order
(flows/stages/route.py, `checked_in_order`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import polars as pl
import pytest

from flows.stages.route import checked_in_order


class SlowFirst:
    """A tally whose check of an earlier chunk takes longer, so later chunks finish first."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.threads: set[str] = set()

    def check(self, chunk: pl.DataFrame) -> int:
        number = chunk.item()
        self.threads.add(threading.current_thread().name)
        time.sleep(0.02 * (self.chunks - number))
        if number < 0:
            raise ValueError(f"chunk {number} is bad")
        return number


def frames(numbers: list[int]) -> Iterator[pl.DataFrame]:
    for number in numbers:
        yield pl.DataFrame({"n": [number]})


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_chunks_are_taken_in_file_order(workers: int) -> None:
    tally = SlowFirst(8)
    taken = list(checked_in_order(tally, frames(list(range(8))), workers))  # type: ignore[arg-type]
    assert taken == list(range(8))
    assert all(name.startswith("route") for name in tally.threads)


def test_a_failed_check_stops_the_stage_with_its_error() -> None:
    tally = SlowFirst(4)
    seen: list[int] = []
    with pytest.raises(ValueError, match="chunk -1 is bad"):
        for number in checked_in_order(tally, frames([0, 1, -1, 3]), 2):  # type: ignore[arg-type]
            seen.append(number)
    assert seen == [0, 1]


def test_a_failed_read_stops_the_stage_with_its_error() -> None:
    def failing() -> Iterator[pl.DataFrame]:
        yield pl.DataFrame({"n": [0]})
        raise OSError("the mount went away")

    with pytest.raises(OSError, match="mount"):
        list(checked_in_order(SlowFirst(1), failing(), 2))  # type: ignore[arg-type]
