"""Stage "route": every in-scope earnings row to exactly one place, a plan or an exception
(docs/payouts.md, "In scope, and routing"; docs/inputs.md for the row checks).

The earnings are taken chunk by chunk (`EarningsTally`), so a month of any size passes through
memory one chunk at a time: each chunk of text is checked against the Earnings model (a row
that fails is an exception, the first routing code), parsed, routed to its plan and summed per
plan and per currency; then only a slim ledger row per earnings row is kept (row, earning_id,
plan, amount, currency). Duplicate earning_ids can lie in any two chunks, so they are settled
once all chunks are in: their rows leave the plans' sums and become exceptions. Any chunking
gives the same result (a property test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from coop_rules import integrity, payouts, routing
from coop_rules.calendar import parse_month
from coop_rules.integrity import OK
from coop_rules.money import MONEY, ZERO, to_money
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import ROW, Dataset
from pipeline.validate import mark
from schemas.inputs import (
    EXCEPTION_COLUMNS,
    INPUTS,
    MONTH_FORM,
    empty_exceptions,
    finish_exceptions,
    parse_text,
    validate_text,
)


@dataclass(frozen=True)
class Earnings:
    """The month's earnings once every chunk is in.

    `earned`: plan_id, earnings_count, earned_amount of the rows routed to each plan.
    `in_scope_rows`, and `input_sums` (currency, input: the sum of the in-scope amounts that
    parse and fit their currency) for the reconciliation. `month_rows`: the rows whose
    earning_month is M itself (in scope are also the rows whose month cannot be read).
    `rows`: every row of the file.
    """

    exceptions: pl.DataFrame
    earned: pl.DataFrame
    in_scope_rows: int
    month_rows: int
    input_sums: pl.DataFrame
    rows: int


def in_scope(earnings: pl.DataFrame, month: str) -> pl.DataFrame:
    """Earnings rows of month M, and rows whose month cannot be read (they belong to no month,
    so every run reports them rather than lose them)."""
    month_col = pl.col("earning_month")
    # A file holds few distinct months: judge each distinct text once, not every row.
    distinct = earnings.select(month_col.unique())
    if distinct.height == 1 and distinct.item() == month:
        return earnings
    readable = (
        distinct.drop_nulls()
        .filter(
            month_col.str.contains(MONTH_FORM)
            & (month_col + "-01").str.to_date("%Y-%m-%d", strict=False).is_not_null()
        )
        .get_column("earning_month")
    )
    return earnings.filter(
        (month_col == month) | ~month_col.is_in(readable.implode()).fill_null(False)
    )


class EarningsTally:
    """The month's earnings, taken one chunk of text at a time (docs/payouts.md).

    Of each chunk, the in-scope rows are validated by the Earnings schema, parsed and routed.
    Kept: the exception rows, the sums per plan and per currency, and a slim ledger row per
    earnings row (row, earning_id, in scope, plan, amount, currency: about 45 bytes).
    Duplicate earning_ids can span chunks: `finish` finds them in the ledger and takes their
    rows back out of the sums.
    """

    def __init__(
        self, month: str, settings: RuleSettings, programs: pl.DataFrame, plans: pl.DataFrame
    ) -> None:
        """`programs` and `plans`: the checked frames (with `OK`) of stage validate."""
        self.month = month
        self.settings = settings
        self.table = routing.routing_table(programs, plans, parse_month(month))
        self.currency = pl.Enum(sorted(settings.currencies))
        self.rows = 0
        self.in_scope_rows = 0
        self.month_rows = 0
        self._found: list[pl.DataFrame] = []
        self._routing: list[pl.DataFrame] = []
        # Each list starts with an empty frame of its columns: a file may have no rows.
        self._ledger = [
            pl.DataFrame(
                schema={
                    ROW: pl.Int64,
                    "earning_id": pl.String,
                    "in_scope": pl.Boolean,
                    routing.PLAN_INDEX: pl.UInt32,
                    "amount": MONEY,
                    "currency": self.currency,
                }
            )
        ]
        self._earned = _earned(pl.DataFrame(schema={"plan_id": pl.String, "amount": MONEY}))
        self._input = [pl.DataFrame(schema={"currency": pl.String, "input": MONEY})]

    def add(self, text: pl.DataFrame) -> None:
        """Check and route one chunk: the file's columns as text, and `ROW`."""
        spec = INPUTS[Dataset.EARNINGS]
        self.rows += text.height
        scoped = in_scope(text, self.month)
        self.in_scope_rows += scoped.height
        self.month_rows += int((scoped.get_column("earning_month") == self.month).sum())
        found = validate_text(scoped, spec, self.settings)
        typed = parse_text(mark(scoped.with_columns(pl.lit(True).alias(OK)), found), spec)
        routed = routing.route_earnings(
            typed.lazy().select(
                ROW, OK, "earning_id", "mpn_id", "program", "fund", "amount", "currency"
            ),
            self.table,
        ).collect()
        self._routing.append(
            # In-memory engine: polars 2.1's streaming engine panics on these when/then
            # messages ("assertion failed: i < self.len()" in binview) over a projection.
            routing.routing_exceptions(routed.lazy()).collect(engine="in-memory")
        )
        # An amount counts where it parses and fits its currency (no exception on either).
        unfit = found.filter(pl.col("column").is_in(["amount", "currency"])).get_column(
            "row_number"
        )
        fits = ~pl.col(ROW).is_in(unfit.implode())
        ledger = routed.select(
            ROW,
            "earning_id",
            pl.lit(True).alias("in_scope"),
            routing.routed_plan(routing.PLAN_INDEX),
            pl.when(fits).then(pl.col("amount")).alias("amount"),
            pl.when(fits).then(pl.col("currency")).cast(self.currency).alias("currency"),
        )
        self._found.append(_with_amounts(finish_exceptions(found, Dataset.EARNINGS), ledger))
        self._input.append(
            ledger.filter(pl.col("amount").is_not_null())
            .group_by(pl.col("currency").cast(pl.String))
            .agg(to_money(pl.col("amount").sum()).alias("input"))
        )
        to_plans = routed.filter(routing.routed_plan().is_not_null()).select("plan_id", "amount")
        self._earned = _merge_earned(self._earned, _earned(to_plans))
        if scoped.height < text.height:
            # Rows of other months take part in the duplicate check of earning_id only.
            others = text.join(scoped.select(ROW), on=ROW, how="anti").select(
                ROW, "earning_id", pl.lit(False).alias("in_scope")
            )
            ledger = pl.concat([ledger, others], how="diagonal_relaxed")
        self._ledger.append(ledger)

    def finish(self) -> Earnings:
        """Settle duplicate earning_ids over the whole file; sum the routed rows per plan."""
        ledger = pl.concat(self._ledger, rechunk=False)
        # Every row sharing an earning_id is set aside, whichever month it belongs to; the
        # rows of month M among them are reported.
        duplicates = integrity.duplicate_keys(
            ledger.select(ROW, "earning_id"), ("earning_id",), "earning_id"
        )
        set_aside = ledger.filter(pl.col(ROW).is_in(duplicates.get_column("row_number").implode()))
        reported = set_aside.filter(pl.col("in_scope"))
        duplicates = duplicates.join(
            reported.select(pl.col(ROW).alias("row_number")), on="row_number", how="semi"
        )
        set_aside_rows = set_aside.get_column(ROW).implode()
        taken_back = set_aside.filter(pl.col(routing.PLAN_INDEX).is_not_null()).join(
            self.table.plan_keys.select(routing.PLAN_INDEX, "plan_id"), on=routing.PLAN_INDEX
        )
        exceptions = [
            *self._found,
            _with_amounts(finish_exceptions(duplicates, Dataset.EARNINGS), reported),
            *(
                finish_exceptions(found, Dataset.EARNINGS).filter(
                    ~pl.col("row_number").is_in(set_aside_rows)
                )
                for found in self._routing
            ),
        ]
        return Earnings(
            exceptions=pl.concat(
                [e for e in exceptions if not e.is_empty()] or [empty_exceptions()]
            ),
            earned=_take_back(self._earned, _earned(taken_back.select("plan_id", "amount"))),
            in_scope_rows=self.in_scope_rows,
            month_rows=self.month_rows,
            input_sums=pl.concat(self._input)
            .group_by("currency")
            .agg(to_money(pl.col("input").sum()).alias("input")),
            rows=self.rows,
        )


def _earned(routed: pl.DataFrame) -> pl.DataFrame:
    """`earnings_count` and `earned_amount` per plan of routed rows (`plan_id`, `amount`)."""
    return payouts.earned_per_plan(routed.lazy()).collect()


def _merge_earned(total: pl.DataFrame, more: pl.DataFrame) -> pl.DataFrame:
    """Two sets of sums per plan, added up."""
    return (
        pl.concat([total, more])
        .group_by("plan_id")
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
        total.join(removed, on="plan_id", how="left", suffix="_removed")
        .with_columns(
            (pl.col("earnings_count") - pl.col("earnings_count_removed").fill_null(0)).alias(
                "earnings_count"
            ),
            to_money(
                pl.col("earned_amount") - pl.col("earned_amount_removed").fill_null(ZERO)
            ).alias("earned_amount"),
        )
        .filter(pl.col("earnings_count") > 0)
        .select("plan_id", "earnings_count", "earned_amount")
    )


def _with_amounts(exceptions: pl.DataFrame, ledger: pl.DataFrame) -> pl.DataFrame:
    """Give earnings exceptions their row's amount and currency where the amount parses and
    fits its currency (docs/payouts.md), so the reconciliation can account for every amount."""
    amounts = ledger.select(
        pl.col(ROW).alias("row_number"),
        pl.col("amount").alias("__amount"),
        pl.col("currency").cast(pl.String).alias("__currency"),
    )
    return (
        exceptions.join(amounts, on="row_number", how="left")
        .with_columns(pl.col("__amount").alias("amount"), pl.col("__currency").alias("currency"))
        .select(list(EXCEPTION_COLUMNS))
    )
