"""The pure functions of stages validate, route and decide strung together over in-memory
frames, as the stages call them: for the tests of rules (`flows/stages/*.py`). The stages
themselves, with their files, are run by `flows.run.run_month` in the flows tests."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import Dataset
from flows.stages.decide import CheckedReferences, MonthResult, RoutedEarnings, decide
from flows.stages.route import TALLIED, EarningsTally, duplicate_candidates, in_row_order
from flows.stages.validate import References, check_references


def compute_month(
    text: dict[Dataset, pl.DataFrame | None],
    month: str,
    settings: RuleSettings,
    run_id: str,
    paid_before: pl.DataFrame,
    chunks: Iterable[pl.DataFrame] | None = None,
    streamed: int | None = None,
) -> tuple[MonthResult, References]:
    """The month's result from text frames; the earnings whole, or as `chunks` in file order
    (checked last to first, taken first to last), or with `streamed` as stage route takes
    them: the lazy queries of the whole file on the streaming engine, the routed rows summed,
    the exceptional rows and the ledger taken `streamed` rows at a time."""
    references = check_references(text, settings)
    tally = EarningsTally(
        month, settings, references.frames[Dataset.PROGRAMS], references.frames[Dataset.PLANS]
    )
    earnings = text[Dataset.EARNINGS]
    if streamed is not None:
        assert earnings is not None
        queries = tally.queries(earnings.lazy())
        routed_rows, exceptional = pl.collect_all(
            [queries.routed, queries.exceptional], engine="streaming"
        )
        # Summed `streamed` rows at a time, as the stage sums `TALLY_ROWS` at a time: the
        # sums of several batches merge (every `MERGE_EVERY` of them, and at the end).
        tallied = routed_rows.select(TALLIED)
        for start in range(0, max(tallied.height, 1), streamed):
            tally.take_tallies(tallied.slice(start, streamed))
        # The queries keep no order: the exceptional rows are taken in row order.
        for batch in in_row_order(exceptional.lazy(), streamed):
            tally.take_exceptional(batch)
        tally.take_ledger(duplicate_candidates(routed_rows.lazy()))
    else:
        chunks = list(chunks) if chunks is not None else [earnings]
        # Chunks checked last to first and taken first to last: a check that leaned on an
        # earlier chunk would show.
        checked = [tally.check(chunk) for chunk in reversed(chunks)]
        for chunk in reversed(checked):
            tally.take(chunk)
    routed = tally.finish()
    result = decide(
        CheckedReferences(
            {dataset: frame.lazy() for dataset, frame in references.frames.items()},
            references.exceptions,
            references.activity_checked,
        ),
        RoutedEarnings(
            earned=routed.earned,
            input_sums=routed.input_sums,
            exceptions=routed.exceptions,
            in_scope_rows=routed.in_scope_rows,
        ),
        month,
        settings,
        run_id,
        paid_before,
    )
    return result, references
