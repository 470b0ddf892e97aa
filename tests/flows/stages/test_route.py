"""The earnings' exception rows come out of stage route in the published order without a sort of
the month's rows (`flows.stages.route`, the merge of the spilled sets, and the exceptional rows
of the streaming queries read back in row order): docs/payouts.md."""

from __future__ import annotations

import polars as pl
import pytest

from coop_rules.vocabulary import ROW_NUMBER, Code, Dataset
from flows.stages import route
from schemas.inputs import EXCEPTION_ORDER
from tests.coop_rules import builders as b
from tests.flows.stages.compose import compute_month

EARNINGS = [
    b.earning(earning_id="E-1", mpn_id="9999999"),  # 1 NO_PLAN
    b.earning(earning_id="E-2"),  # 2 and 5: one id twice, the second with a bad amount
    b.earning(earning_id="E-3", amount="1.234", currency="USD"),  # 3 INVALID_AMOUNT
    b.earning(earning_id="E-4", mpn_id="9999999", program=None),  # 4 MISSING_VALUE
    b.earning(earning_id="E-2", amount="abc"),
    b.earning(earning_id="E-6", mpn_id="9999999"),  # 6 NO_PLAN, and a duplicate of 7
    b.earning(earning_id="E-6"),
    b.earning(earning_id="E-8", mpn_id="9999999"),  # 8 NO_PLAN
]
EXPECTED = [
    (1, Code.NO_PLAN),
    (2, Code.DUPLICATE_KEY),
    (3, Code.INVALID_AMOUNT),
    (4, Code.MISSING_VALUE),
    (5, Code.DUPLICATE_KEY),
    (5, Code.INVALID_VALUE),
    (6, Code.DUPLICATE_KEY),
    (7, Code.DUPLICATE_KEY),
    (8, Code.NO_PLAN),
]


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 8])
def test_exception_rows_merge_into_the_published_order(chunk_rows: int) -> None:
    """Schema exceptions, routing exceptions and duplicate ids found in different chunks (and
    a duplicate's own schema exception, and a duplicate that would not route) come out by row,
    then code: a row set aside as a duplicate is not also reported as unroutable."""
    text = b.inputs(earnings=EARNINGS)
    earnings = text[Dataset.EARNINGS]
    assert earnings is not None
    chunks = [earnings.slice(at, chunk_rows) for at in range(0, earnings.height, chunk_rows)]
    result, _ = compute_month(
        text, b.MONTH, b.settings(), "run-1", b.paid_before_frame(None), chunks
    )
    found = result.exceptions.filter(pl.col("source") == Dataset.EARNINGS.value)
    assert found.select("row_number", "code").rows() == [
        (row, code.value) for row, code in EXPECTED
    ]
    assert found.equals(found.sort(*EXCEPTION_ORDER, nulls_last=True, maintain_order=True))


@pytest.mark.parametrize(("sort_rows", "row_bin"), [(500_000, 65_536), (7, 4), (1, 1), (5, 16)])
def test_rows_of_any_order_come_back_in_row_order(
    monkeypatch: pytest.MonkeyPatch, sort_rows: int, row_bin: int
) -> None:
    """The streaming queries keep no order: `in_row_order` gives their rows back in the order
    of their numbers, in slices, holding at most `SORT_ROWS` rows (or one bin) per read."""
    monkeypatch.setattr(route, "SORT_ROWS", sort_rows)
    monkeypatch.setattr(route, "ROW_BIN", row_bin)
    numbers = [n for n in range(1, 60) if n % 3 or n % 7 == 0]  # with gaps
    shuffled = pl.DataFrame({ROW_NUMBER: numbers, "value": [f"v{n}" for n in numbers]}).sample(
        fraction=1.0, shuffle=True, seed=7
    )
    reads: list[int] = []
    collect = pl.LazyFrame.collect

    def counted(frame: pl.LazyFrame, *args: object, **kwargs: object) -> pl.DataFrame:
        result = collect(frame, *args, **kwargs)  # type: ignore[arg-type]
        if "value" in result.columns:
            reads.append(result.height)
        return result

    monkeypatch.setattr(pl.LazyFrame, "collect", counted)
    slices = list(route.in_row_order(shuffled.lazy(), 4))
    assert all(0 < s.height <= 4 for s in slices)
    together = pl.concat(slices)
    assert together.get_column(ROW_NUMBER).to_list() == numbers
    assert together.get_column("value").to_list() == [f"v{n}" for n in numbers]
    assert sum(reads) == len(numbers)
    assert max(reads) <= max(sort_rows, row_bin)
    if sort_rows >= len(numbers):
        assert len(reads) == 1


def test_no_rows_give_no_slice() -> None:
    empty = pl.LazyFrame(schema={ROW_NUMBER: pl.Int64, "value": pl.String})
    assert list(route.in_row_order(empty, 4)) == []
