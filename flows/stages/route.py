"""Stage "route": every in-scope earnings row to exactly one place, a plan or an exception
(docs/payouts.md, "In scope, and routing"; docs/inputs.md for the row checks).

The run takes the earnings file whole as two lazy queries (`EarningsTally.queries`) that polars'
streaming engine runs a morsel at a time, so a month of any size passes through memory in
pieces: each row of text is checked by the Earnings model's checks compiled into expressions (a
row that fails is an exception, the first routing code), parsed, routed to its plan; a slim row
per earnings row and the few exceptional rows are written out as the queries run. Sums per plan
and per currency are taken over the slim rows (`take_tallies`), the exceptional rows get their
sentences (`take_exceptional`), and duplicate earning_ids, found among the rows of a repeated
hash (`duplicate_candidates`), leave the plans' sums and become exceptions (`finish`).

The same tally also takes the earnings chunk by chunk (`check`, `take`): rows of each chunk go to
a `Spill` in buckets by a hash of earning_id, settled bucket by bucket. Any chunking, and the
streamed queries, give the same result (property tests check it).

Stage route runs those queries over the earnings file (`stream`) and keeps the sums and the
exception rows for stage decide; it refuses a month that has no earnings rows at all unless
--allow-empty (docs/reruns.md, "Safety guarantees").
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import polars as pl

from coop_rules import integrity, payouts, routing
from coop_rules.calendar import parse_month
from coop_rules.integrity import OK, PLAN_KEY
from coop_rules.money import MONEY, ZERO, to_money, to_wide
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import ROW_NUMBER, Dataset
from flows import catalog, files, reading
from flows.catalog import Handover
from flows.errors import InputRejected
from flows.month import MonthRun, progress, sums_fit
from flows.stages import Stage
from flows.stages.summaries import ReadInputs, Routed
from schemas.inputs import (
    EXCEPTION_COLUMNS,
    EXCEPTION_ORDER,
    INPUTS,
    MONTH_FORM,
    CheckOn,
    calendar_month,
    compile_checks,
    empty_exceptions,
    finish_exceptions,
    parse_text,
    schema_for,
    validate_text,
)


@dataclass(frozen=True)
class Earnings:
    """The month's earnings once every chunk is in.

    `earned`: plan_id, earnings_count, earned_amount of the rows routed to each plan.
    `in_scope_rows`, and `input_sums` (currency, input: the sum of the in-scope amounts that
    parse and fit their currency) for the reconciliation. `month_rows`: the rows whose
    earning_month is M itself (in scope are also the rows whose month cannot be read).
    `rows`: every row of the file. `exceptions` come in the order of the published file
    (`EXCEPTION_ORDER`), as a query over the spilled rows: the month's largest set of rows is
    never held whole by route (stage route writes it to a file as the query runs), and stage
    decide need not sort it again.
    """

    exceptions: pl.LazyFrame
    earned: pl.DataFrame
    in_scope_rows: int
    month_rows: int
    input_sums: pl.DataFrame
    rows: int


# Ledger rows go to this many buckets by a hash of earning_id: every copy of an id lands in one
# bucket, and `finish` holds one bucket at a time (a 40M-row month: about 60 MB each).
LEDGER_BUCKETS = 32
BUCKET = "__bucket"


class Spill(Protocol):
    """Where rows of each chunk wait, by part (a ledger bucket, the exceptions), until all
    chunks are in."""

    def put(self, part: str, rows: pl.DataFrame) -> None:
        """Keep `rows` (of one chunk) in `part`, after the rows put there before."""
        ...

    def get(self, part: str) -> pl.DataFrame | None:
        """Every row put in `part` so far, in order; None if none was."""
        ...

    def scan(self, part: str) -> pl.LazyFrame | None:
        """The same rows as `get`, read only when a query over them runs."""
        ...


class MemorySpill:
    """A `Spill` in memory (for tests and small months)."""

    def __init__(self) -> None:
        self._parts: dict[str, list[pl.DataFrame]] = {}

    def put(self, part: str, rows: pl.DataFrame) -> None:
        self._parts.setdefault(part, []).append(rows)

    def get(self, part: str) -> pl.DataFrame | None:
        rows = self._parts.get(part)
        return pl.concat(rows) if rows else None

    def scan(self, part: str) -> pl.LazyFrame | None:
        rows = self.get(part)
        return rows.lazy() if rows is not None else None


def ledger_part(bucket: int) -> str:
    """The spill's part that holds the ledger rows of `bucket`."""
    return f"ledger-{bucket:03d}"


def in_scope(earnings: pl.DataFrame, month: str) -> pl.Series:
    """True for the earnings rows of month M, and rows whose month cannot be read (they belong
    to no month, so every run reports them rather than lose them)."""
    month_col = pl.col("earning_month")
    # A file holds few distinct months: judge each distinct text once, not every row.
    distinct = earnings.select(month_col.unique())
    if distinct.height == 1 and distinct.item() == month:
        return pl.repeat(True, earnings.height, eager=True)
    readable = (
        distinct.drop_nulls()
        .filter(
            month_col.str.contains(MONTH_FORM)
            & (month_col + "-01").str.to_date("%Y-%m-%d", strict=False).is_not_null()
        )
        .get_column("earning_month")
    )
    if readable.len() == distinct.height:
        # Every month is readable: one comparison per row is the whole test.
        return earnings.select(month_col == month).to_series()
    return earnings.select(
        (month_col == month) | ~month_col.is_in(readable.implode()).fill_null(False)
    ).to_series()


def in_scope_expr(month: str) -> pl.Expr:
    """`in_scope` as one elementwise expression (a real month is a month of the form that
    passes the schema's own `calendar_month` check), for a query over rows of any number."""
    month_col = pl.col("earning_month")
    readable = month_col.str.contains(MONTH_FORM) & calendar_month(CheckOn("earning_month"))
    return ((month_col == month) | ~readable.fill_null(False)).fill_null(True)


# Columns of the streamed earnings (`EarningsTally.queries`): whether a row is in scope, and
# whether its amount and currency pass every check (its amount then counts).
IN_SCOPE = "in_scope"
FITS = "__fits"
AMOUNT_TEXT = "__amount_text"
FIT_CURRENCY = "__currency"
CHECK_FLAG = "__check_"


@dataclass(frozen=True)
class EarningsQueries:
    """The month's earnings as two lazy queries over one scan of their text
    (`EarningsTally.queries`), for polars' streaming engine: a month of any size runs through
    them a morsel at a time, and the caller writes both to files as they run.

    `routed`: a slim row per earnings row: row, earning_id and its hash, whether in scope and of
    M itself, the plan it reaches, the amount and currency that count.
    `exceptional`: the in-scope rows with a schema or routing exception (their text, `ROW_NUMBER`,
    `OK`, the routing code and columns): the few rows that need sentences.

    Neither keeps the file's order (`in_row_order` gives rows back in it).
    """

    routed: pl.LazyFrame
    exceptional: pl.LazyFrame


# The 64-bit hash of earning_id: every copy of an id has the same one, so the few repeated
# hashes hold every repeated id (`duplicate_candidates`).
ID_HASH = "__id_hash"
IN_MONTH = "__in_month"
# Repeated hashes are looked for in this many parts of the routed rows, one part in memory at a
# time (a 40M-row month: 40 MB of hashes a part).
HASH_PARTS = 8


# The columns of the routed rows that `EarningsTally.take_tallies` reads.
TALLIED = (routing.PLAN_INDEX, "currency", IN_SCOPE, IN_MONTH, "amount")


def duplicate_candidates(routed: pl.LazyFrame) -> pl.DataFrame:
    """The routed rows whose earning_id hash is repeated: every row of a repeated earning_id
    and a few others (`EarningsTally.take_ledger` settles them exactly). The hashes are sorted
    one part at a time, so memory holds a part of the month's hashes, never a row per row."""
    digest = pl.col(ID_HASH)
    repeated = []
    for part in range(HASH_PARTS):
        hashes = (
            routed.filter(digest % HASH_PARTS == part).select(digest).collect().to_series().sort()
        )
        repeated.append(hashes.filter(hashes == hashes.shift(1)).unique())
    return routed.filter(digest.is_in(pl.concat(repeated).implode())).drop(ID_HASH).collect()


@dataclass(frozen=True)
class CheckedChunk:
    """One chunk of earnings checked, routed and summed (`EarningsTally.check`): its counts,
    the rows it hands to the spill (`parts`, in order), its amounts per currency and its sums
    per plan."""

    rows: int
    in_scope_rows: int
    month_rows: int
    parts: tuple[tuple[str, pl.DataFrame], ...]
    input_sums: pl.DataFrame
    earned: pl.DataFrame


# Sums per plan of this many chunks wait before they are added to the running sums: one
# group_by over several chunks' sums costs less than one per chunk.
MERGE_EVERY = 4


class EarningsTally:
    """The month's earnings, taken one chunk of text at a time (docs/payouts.md).

    Of each chunk, the in-scope rows are validated by the Earnings schema, parsed and routed
    (`check`, which changes nothing, so several chunks can be checked at the same time); `take`
    then keeps, in file order, the sums per plan and per currency, and hands the exception rows
    and a slim ledger row per earnings row (row, earning_id, in scope, plan, amount, currency)
    to `spill`. Duplicate earning_ids can span chunks: `finish` finds them in the ledger,
    bucket by bucket, and takes their rows back out of the sums.
    """

    def __init__(
        self,
        month: str,
        settings: RuleSettings,
        programs: pl.DataFrame,
        plans: pl.DataFrame,
        spill: Spill | None = None,
    ) -> None:
        """`programs` and `plans`: the checked frames (with `OK`) of stage validate."""
        self.month = month
        self.settings = settings
        self.table = routing.routing_table(programs, plans, parse_month(month))
        self.currency = pl.Enum(sorted(settings.currencies))
        self.rows = 0
        self.in_scope_rows = 0
        self.month_rows = 0
        self._spec = INPUTS[Dataset.EARNINGS]
        self._schema = schema_for(self._spec, settings)
        self._spill = spill if spill is not None else MemorySpill()
        self._ledger_schema = pl.Schema(
            {  # type: ignore[arg-type]  # an Enum instance is a data type
                ROW_NUMBER: pl.Int64,
                "earning_id": pl.String,
                "in_scope": pl.Boolean,
                routing.PLAN_INDEX: pl.UInt32,
                "amount": MONEY,
                "currency": self.currency,
            }
        )
        # Empty frames of their columns to start from: a file may have no rows.
        self._earned = _earned(pl.DataFrame(schema=self._ledger_schema))
        self._waiting: list[pl.DataFrame] = []
        self._input = [pl.DataFrame(schema={"currency": pl.String, "input": MONEY})]

    def check(self, text: pl.DataFrame) -> CheckedChunk:
        """Check, route and sum one chunk: the file's columns as text, and `ROW_NUMBER`. Changes
        nothing: chunks may be checked in any order, and at the same time."""
        scope = in_scope(text, self.month)
        scoped = text.filter(scope)
        found = validate_text(scoped, self._spec, self.settings, self._schema)
        # An amount counts where it parses and fits its currency (no exception on either).
        unfit = found.filter(pl.col("column").is_in(["amount", "currency"]))
        fits = ~pl.col(ROW_NUMBER).is_in(unfit.get_column(ROW_NUMBER).implode())
        typed = parse_text(
            scoped.lazy().select(
                ROW_NUMBER,
                (~pl.col(ROW_NUMBER).is_in(found.get_column(ROW_NUMBER).implode())).alias(OK),
                "earning_id",
                "mpn_id",
                "program",
                "fund",
                "amount",
                "currency",
            ),
            self._spec,
        )
        routed = (
            routing.route_earnings(typed, self.table)
            .with_columns(
                routing.routed_plan(routing.PLAN_INDEX),
                pl.when(fits).then(pl.col("amount")).alias("amount"),
                pl.when(fits).then(pl.col("currency")).cast(self.currency).alias("__currency"),
            )
            .collect()
        )
        # In-memory engine: polars 2.1's streaming engine panics on these when/then
        # messages ("assertion failed: i < self.len()" in binview) over a projection.
        unrouted = finish_exceptions(
            routing.routing_exceptions(routed.lazy()).collect(engine="in-memory"),
            Dataset.EARNINGS,
        )
        ledger = routed.select(
            ROW_NUMBER,
            "earning_id",
            pl.lit(True).alias("in_scope"),
            routing.PLAN_INDEX,
            "amount",
            pl.col("__currency").alias("currency"),
        )
        # Each chunk's exception rows in the published order: the chunks' rows follow one
        # another in the file, so `finish` merges the parts without sorting the month's rows.
        exceptions = _with_amounts(finish_exceptions(found, Dataset.EARNINGS), ledger).sort(
            *EXCEPTION_ORDER[1:], nulls_last=True
        )
        input_sums = (
            ledger.filter(pl.col("amount").is_not_null())
            .group_by("currency")
            .agg(to_money(pl.col("amount").sum()).alias("input"))
            .with_columns(pl.col("currency").cast(pl.String))
        )
        earned = _earned(ledger.filter(pl.col(routing.PLAN_INDEX).is_not_null()))
        if scoped.height < text.height:
            # Rows of other months take part in the duplicate check of earning_id only.
            others = text.filter(~scope).select(
                ROW_NUMBER, "earning_id", pl.lit(False).alias("in_scope")
            )
            ledger = pl.concat([ledger, others], how="diagonal_relaxed")
        return CheckedChunk(
            rows=text.height,
            in_scope_rows=scoped.height,
            month_rows=int((scoped.get_column("earning_month") == self.month).sum()),
            parts=(
                ("routing", unrouted.sort(ROW_NUMBER)),
                ("found", exceptions),
                *self._buckets(ledger),
            ),
            input_sums=input_sums,
            earned=earned,
        )

    def queries(self, text: pl.LazyFrame) -> EarningsQueries:
        """The whole file at once (`text`: the file's columns as text, and `ROW_NUMBER`) as lazy
        queries of elementwise steps and one join: the schema's checks compiled into
        expressions (flags, no message), the packed-key join. Messages are made later, of the
        few exceptional rows only (`take_exceptional`)."""
        checks = compile_checks(self._schema)
        scope = pl.col(IN_SCOPE)
        # Each check a column of its own, then their conjunction: as one expression the
        # checks that share a test (an amount's form) ran it again, 40% more CPU at 10M rows.
        flags = [f"{CHECK_FLAG}{number}" for number in range(len(checks))]
        fit_flags = [
            flag
            for flag, c in zip(flags, checks, strict=True)
            if c.column in ("amount", "currency")
        ]
        flagged = (
            text.with_columns(
                in_scope_expr(self.month).alias(IN_SCOPE),
                (pl.col("earning_month") == self.month).fill_null(False).alias(IN_MONTH),
                pl.col("amount").alias(AMOUNT_TEXT),
                *(c.passes.alias(flag) for flag, c in zip(flags, checks, strict=True)),
            )
            .with_columns(
                (pl.all_horizontal(flags) & scope).alias(OK),
                (pl.all_horizontal(fit_flags) & scope).alias(FITS),
            )
            .drop(flags)
        )
        # Rows in any order (the caller sorts the few exceptional rows): a join that keeps
        # the order cost a quarter of the query's time at 10M rows. Of every row, only
        # whether it reaches its plan; the routing code and its period are made for the
        # exceptional rows alone.
        matched = routing.match_plans(parse_text(flagged, self._spec), self.table, keep_order=False)
        reaches = routing.reaches_plan()
        fit_currency = pl.when(FITS).then(pl.col("currency")).cast(self.currency)
        fit_amount = pl.when(FITS).then(pl.col("amount")).alias("amount")
        text_columns = [c for c in self._spec.columns if c != "amount"]
        exceptional = routing.route_codes(matched.filter(scope & ~reaches), self.table)
        return EarningsQueries(
            routed=matched.select(
                ROW_NUMBER,
                "earning_id",
                IN_SCOPE,
                IN_MONTH,
                routing.routed_plan(routing.PLAN_INDEX),
                fit_amount,
                fit_currency.alias("currency"),
                pl.col("earning_id").hash().alias(ID_HASH),
            ),
            exceptional=exceptional.select(
                ROW_NUMBER,
                *text_columns,
                pl.col(AMOUNT_TEXT),
                OK,
                routing.ROUTE,
                "period",
                "__plan_rows",
                "plan_id",
                "__plan_currency",
                fit_amount,
                fit_currency.alias(FIT_CURRENCY),
            ),
        )

    def take_tallies(self, routed: pl.DataFrame) -> None:
        """Keep the counts and sums of some routed rows of `queries` (each row once, in any
        order; the `TALLIED` columns): the file's rows, those in scope and of M itself, the
        sums per plan index (the rows routed to a plan) and per currency (the amounts that
        count). Taken over a batch of rows at a time: polars' streaming group-by of decimal
        sums over the 40M month's rows held 1.4 GB. Three aggregations, not one group-by on
        plan index and currency (a key of two columns costs twice the hashing of one)."""
        rows, in_scope_rows, month_rows = routed.select(
            pl.len().cast(pl.Int64), pl.col(IN_SCOPE, IN_MONTH).sum().cast(pl.Int64)
        ).row(0)
        self.rows += rows
        self.in_scope_rows += in_scope_rows
        self.month_rows += month_rows
        plan = pl.col(routing.PLAN_INDEX)
        earned = (
            routed.lazy()
            .filter(plan.is_not_null())
            .group_by(plan)
            .agg(
                pl.len().cast(pl.Int64).alias("earnings_count"),
                to_money(to_wide(pl.col("amount").sum())).alias("earned_amount"),
            )
            .collect()
        )
        self._waiting.append(earned)
        if len(self._waiting) >= MERGE_EVERY:
            self._merge_waiting()
        self._input.append(
            routed.lazy()
            .filter(pl.col("currency").is_not_null())
            .group_by("currency")
            .agg(to_money(to_wide(pl.col("amount").sum())).alias("input"))
            .with_columns(pl.col("currency").cast(pl.String))
            .collect()
        )

    def take_exceptional(self, rows: pl.DataFrame) -> None:
        """Give the exceptional rows of `queries` (a slice of them, in file order, one slice
        after another) their exception rows: pandera names each failure of a row the compiled
        checks failed; the routing code of the others gets its sentence."""
        failing = rows.filter(~pl.col(OK))
        text = failing.select(
            *(
                pl.col(AMOUNT_TEXT).alias("amount") if c == "amount" else pl.col(c)
                for c in self._spec.columns
            ),
            ROW_NUMBER,
        )
        found = validate_text(text, self._spec, self.settings, self._schema)
        unexplained = text.join(found.select(pl.col(ROW_NUMBER)), on=ROW_NUMBER, how="anti")
        if not unexplained.is_empty():
            raise ValueError(
                f"earnings row {unexplained.item(0, ROW_NUMBER)} failed a compiled check of the "
                "Earnings schema that pandera passes: the screen and the schema disagree"
            )
        amounts = failing.select(ROW_NUMBER, "amount", pl.col(FIT_CURRENCY).alias("currency"))
        # Rechunked: polars 2.1 panics formatting messages over text of several chunks.
        unrouted = rows.filter(pl.col(OK)).rechunk()
        self._spill.put(
            "routing",
            finish_exceptions(
                routing.routing_exceptions(unrouted.lazy()).collect(engine="in-memory"),
                Dataset.EARNINGS,
            ).sort(ROW_NUMBER),
        )
        self._spill.put(
            "found",
            _with_amounts(finish_exceptions(found, Dataset.EARNINGS), amounts).sort(
                *EXCEPTION_ORDER[1:], nulls_last=True
            ),
        )

    def take_ledger(self, ledger: pl.DataFrame) -> None:
        """Keep routed rows of `queries` that may share an earning_id (`duplicate_candidates`,
        or any rows that hold every copy of each id among them): `finish` settles them."""
        for part, rows in self._buckets(ledger):
            self._spill.put(part, rows)

    def take(self, checked: CheckedChunk) -> None:
        """Keep a checked chunk: chunks are taken in file order, each once."""
        self.rows += checked.rows
        self.in_scope_rows += checked.in_scope_rows
        self.month_rows += checked.month_rows
        for part, rows in checked.parts:
            self._spill.put(part, rows)
        self._input.append(checked.input_sums)
        self._waiting.append(checked.earned)
        if len(self._waiting) >= MERGE_EVERY:
            self._merge_waiting()

    def _merge_waiting(self) -> None:
        self._earned = _merge_earned([self._earned, *self._waiting])
        self._waiting = []

    def _buckets(self, ledger: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
        """The chunk's ledger rows by bucket of earning_id."""
        bucketed = ledger.select(*self._ledger_schema.names()).with_columns(
            (pl.col("earning_id").hash() % LEDGER_BUCKETS).alias(BUCKET)
        )
        return [
            (ledger_part(int(bucket)), rows.drop(BUCKET))
            for (bucket,), rows in sorted(bucketed.partition_by(BUCKET, as_dict=True).items())
        ]

    def _repeated(self) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        """Per bucket with repeated earning_ids: their exception rows and ledger rows."""
        for bucket in range(LEDGER_BUCKETS):
            ledger = self._spill.get(ledger_part(bucket))
            if ledger is None:
                continue
            duplicates = integrity.duplicate_keys(
                ledger.select(ROW_NUMBER, "earning_id"), ("earning_id",), "earning_id"
            )
            if duplicates.is_empty():
                continue
            rows = duplicates.get_column(ROW_NUMBER).implode()
            yield duplicates, ledger.filter(pl.col(ROW_NUMBER).is_in(rows))

    def finish(self) -> Earnings:
        """Settle duplicate earning_ids over the whole file; sum the routed rows per plan; the
        exception rows as a query over the spilled ones."""
        self._merge_waiting()
        repeated = list(self._repeated())
        # Every row sharing an earning_id is set aside, whichever month it belongs to; the
        # rows of month M among them are reported.
        duplicates = pl.concat(
            [exceptions for exceptions, _ in repeated] or [empty_exceptions()],
            how="diagonal_relaxed",
        )
        set_aside = pl.concat(
            [rows for _, rows in repeated] or [pl.DataFrame(schema=self._ledger_schema)]
        )
        reported = set_aside.filter(pl.col("in_scope"))
        duplicates = duplicates.join(reported.select(pl.col(ROW_NUMBER)), on=ROW_NUMBER, how="semi")
        set_aside_rows = set_aside.get_column(ROW_NUMBER).implode()
        taken_back = set_aside.filter(pl.col(routing.PLAN_INDEX).is_not_null())
        unrouted = self._spill.scan("routing")
        return Earnings(
            exceptions=_merged(
                _with_amounts(finish_exceptions(duplicates, Dataset.EARNINGS), reported).sort(
                    *EXCEPTION_ORDER[1:], nulls_last=True
                ),
                self._spill.scan("found"),
                # A row set aside as a duplicate is reported as one, not as unroutable.
                None
                if unrouted is None
                else unrouted.filter(~pl.col(ROW_NUMBER).is_in(set_aside_rows)),
            ),
            earned=_take_back(self._earned, _earned(taken_back))
            .join(self.table.plan_keys.select(routing.PLAN_INDEX, "plan_id"), on=routing.PLAN_INDEX)
            .select("plan_id", "earnings_count", "earned_amount"),
            in_scope_rows=self.in_scope_rows,
            month_rows=self.month_rows,
            input_sums=pl.concat(self._input)
            .group_by("currency")
            .agg(to_money(pl.col("input").sum()).alias("input")),
            rows=self.rows,
        )


MERGE_KEY = "__merge_key"


def _merged(
    duplicates: pl.DataFrame, found: pl.LazyFrame | None, unrouted: pl.LazyFrame | None
) -> pl.LazyFrame:
    """The month's earnings exception rows in the published order (`EXCEPTION_ORDER`), from
    three sets each in that order already, merged rather than sorted (a sort holds the month's
    rows twice over).

    A row's routing exception and its schema exceptions never meet (only a row that passed
    every check is routed); its `DUPLICATE_KEY` comes before its schema exceptions (the codes
    sort so), hence the key: twice the row number, one more for the other two sets.
    """
    first = pl.col(ROW_NUMBER) * 2
    merged = duplicates.lazy().with_columns(first.alias(MERGE_KEY))
    for rows in (found, unrouted):
        if rows is not None:
            merged = merged.merge_sorted(rows.with_columns((first + 1).alias(MERGE_KEY)), MERGE_KEY)
    return merged.drop(MERGE_KEY)


def _earned(routed: pl.DataFrame) -> pl.DataFrame:
    """`earnings_count` and `earned_amount` per plan (`PLAN_INDEX`) of routed rows."""
    return payouts.earned_per_plan(routed.lazy(), routing.PLAN_INDEX).collect()


def _merge_earned(sums: list[pl.DataFrame]) -> pl.DataFrame:
    """Sets of sums per plan, added up."""
    return (
        pl.concat(sums)
        .group_by(routing.PLAN_INDEX)
        .agg(
            pl.col("earnings_count").sum(),
            to_money(pl.col("earned_amount").sum()).alias("earned_amount"),
        )
    )


def _take_back(total: pl.DataFrame, removed: pl.DataFrame) -> pl.DataFrame:
    """`total` less the rows in `removed`; a plan left with no row has no sum."""
    if removed.is_empty():
        return total
    return (
        total.join(removed, on=routing.PLAN_INDEX, how="left", suffix="_removed")
        .with_columns(
            (pl.col("earnings_count") - pl.col("earnings_count_removed").fill_null(0)).alias(
                "earnings_count"
            ),
            to_money(
                pl.col("earned_amount") - pl.col("earned_amount_removed").fill_null(ZERO)
            ).alias("earned_amount"),
        )
        .filter(pl.col("earnings_count") > 0)
        .select(routing.PLAN_INDEX, "earnings_count", "earned_amount")
    )


def _with_amounts(exceptions: pl.DataFrame, ledger: pl.DataFrame) -> pl.DataFrame:
    """Give earnings exceptions their row's amount and currency where the amount parses and
    fits its currency (docs/payouts.md), so the reconciliation can account for every amount."""
    amounts = ledger.select(
        pl.col(ROW_NUMBER),
        pl.col("amount").alias("__amount"),
        pl.col("currency").cast(pl.String).alias("__currency"),
    )
    return (
        exceptions.join(amounts, on=ROW_NUMBER, how="left")
        .with_columns(pl.col("__amount").alias("amount"), pl.col("__currency").alias("currency"))
        .select(list(EXCEPTION_COLUMNS))
    )


ROUTING_COLUMNS = ["program", "period", "period_start", "period_end", OK]
# The exceptional rows given their sentences at a time: pandera's memory grows with the
# failures it is shown (docs/performance.md).
SENTENCE_ROWS = 50_000
# The exceptional rows sorted in memory at a time (`in_row_order`; about 150 bytes each), and
# the bins of row numbers they are counted by.
SORT_ROWS = 500_000
ROW_BIN = 65_536
# The reading of the earnings is told once per this many rows read.
PROGRESS_ROWS = 1_000_000
# The routed rows summed at a time (`EarningsTally.take_tallies`): four million rows, not two,
# merge half as many sums per plan (the sums of 40M rows: 3.9 s to 3.0 s, 0.1 GB more held;
# 10M: 1.05 to 0.83 s; docs/performance.md).
TALLY_ROWS = 4_000_000


def in_row_order(rows: pl.LazyFrame, slice_rows: int) -> Iterator[pl.DataFrame]:
    """`rows` (with `ROW_NUMBER`, in any order: the streaming queries keep none) in the order
    of their numbers, `slice_rows` at a time.

    Memory holds at most `SORT_ROWS` of them (or one bin's rows, if more): the rows are counted
    by bins of `ROW_BIN` numbers, and each run of bins that holds up to `SORT_ROWS` rows is
    read and sorted by itself. The month's few exceptional rows take one read; a file whose
    every row fails takes a read per `SORT_ROWS` of them.
    """
    row = pl.col(ROW_NUMBER)
    bins = (
        rows.group_by((row // ROW_BIN).alias("bin"))
        .agg(pl.len().alias("rows"))
        .sort("bin")
        .collect()
    )
    for first, last in _bin_runs(bins.rows()):
        part = rows.filter(row.is_between(first * ROW_BIN, (last + 1) * ROW_BIN, closed="left"))
        ordered = part.collect().sort(ROW_NUMBER)
        for start in range(0, ordered.height, slice_rows):
            yield ordered.slice(start, slice_rows)


def _bin_runs(bins: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The first and last bin of each run of `bins` (bin number and rows, in order) that holds
    up to `SORT_ROWS` rows, or one bin."""
    runs: list[list[int]] = []
    held = 0
    for number, count in bins:
        if runs and held + count <= SORT_ROWS:
            runs[-1][1] = number
            held += count
        else:
            runs.append([number, number])
            held = count
    return [(first, last) for first, last in runs]


def route_earnings(run: MonthRun, inputs: ReadInputs) -> Routed:
    """Check, route and sum the month's earnings; keep the sums and exceptions for decide."""
    file = inputs.files[Dataset.EARNINGS]
    spill = catalog.Spill(run)
    tally = EarningsTally(
        run.month,
        run.rules.settings,
        catalog.load(run, Dataset.PROGRAMS, ROUTING_COLUMNS),
        catalog.load(run, Dataset.PLANS, [*PLAN_KEY, "plan_id", "currency", OK]),
        spill,
    )
    with sums_fit(run.month):
        stream(tally, file, run.work / "stream", min(run.options.chunk_rows, SENTENCE_ROWS))
        progress.info(f"{file.name}: {tally.rows:,} rows checked and routed")
        earnings = tally.finish()
    if earnings.month_rows == 0 and not run.options.allow_empty:
        raise InputRejected(
            f"{file.name} holds no earnings rows of {run.month}; nothing was published "
            "(the month's earnings may not have arrived yet; --allow-empty publishes an empty "
            "month on purpose)"
        )
    catalog.save(run, Handover.EARNED, earnings.earned)
    catalog.save(run, Handover.INPUT_SUMS, earnings.input_sums)
    # Written as the merge of the spilled rows runs: never the month's exceptions whole.
    exceptions = catalog.sink(run, Handover.EARNINGS_EXCEPTIONS, earnings.exceptions)
    return Routed(earnings.rows, earnings.in_scope_rows, earnings.month_rows, exceptions)


def stream(tally: EarningsTally, file: reading.InputFile, folder: Path, slice_rows: int) -> None:
    """One read of the earnings `file` through the tally's queries on the streaming engine:
    the routed rows and the exceptional rows go to files in `folder` as the query runs; then
    the counts and sums are taken over the routed rows, the exceptional rows get their
    exception rows `slice_rows` at a time, and the rows that may share an earning_id are
    settled."""
    folder.mkdir(parents=True, exist_ok=True)
    # The reader runs on a thread of polars: it logs in this stage's context (Prefect's run).
    context = contextvars.copy_context()

    told = [0]

    def read(rows: int) -> None:
        # A line per million rows: each line is a log record of the Prefect task run.
        if rows // PROGRESS_ROWS > told[0]:
            told[0] = rows // PROGRESS_ROWS
            context.run(progress.info, f"{file.name}: {rows:,} rows read")

    # A CSV file is read by polars' own reader (in parallel); a Parquet file's values become
    # text a batch at a time.
    scan: reading.CsvScan | reading.TextScan = (
        reading.CsvScan(file, read) if file.path.suffix == ".csv" else reading.TextScan(file, read)
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
        raise files.write_error(error, folder) from error
    # Blank records at the end of the file are not rows: every blank record is in scope and
    # fails the required checks, so it is among the exceptional rows.
    row = pl.col(ROW_NUMBER)
    blank = pl.all_horizontal(
        pl.col(AMOUNT_TEXT if name == "amount" else name).is_null()
        for name in INPUTS[Dataset.EARNINGS].columns
    )
    records = pl.scan_parquet(routed).select(pl.len()).collect().item()
    last = reading.last_row(
        pl.scan_parquet(exceptional).filter(blank).select(row).collect().to_series(), records
    )
    rows, exceptions = pl.scan_parquet(routed), pl.scan_parquet(exceptional)
    if last < records:
        # Only then: the filter reads every row's number again (a 40M month: 1 s more for
        # each of the sums and the duplicate ids).
        rows, exceptions = rows.filter(row <= last), exceptions.filter(row <= last)
    for batch in rows.select(TALLIED).collect_batches(chunk_size=TALLY_ROWS):
        tally.take_tallies(batch)
    for batch in in_row_order(exceptions, slice_rows):
        tally.take_exceptional(batch)
    tally.take_ledger(duplicate_candidates(rows))


STAGE = Stage(
    "route",
    route_earnings,
    reads=(Dataset.PROGRAMS, Dataset.PLANS),
    writes=(Handover.EARNED, Handover.INPUT_SUMS, Handover.EARNINGS_EXCEPTIONS),
)
