"""One earning month from input text to payout and exception rows (SPEC sections 3 and 4).

`check_inputs` validates every dataset in dependency order (programs, plans, limits, campaigns,
activities, then the month's earnings); `compute_month` decides. Both are pure: the frames come
in, the frames go out, and `flows/` does the reading and writing.

Earnings are taken chunk by chunk (`EarningsTally`): each chunk of text is checked, parsed and
routed, then only a slim ledger row per earnings row is kept (row, earning_id, plan, amount,
currency). Duplicate earning_ids span chunks, so they are settled once all chunks are in: their
rows leave the plans' sums and become exceptions. Any chunking gives the same result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import polars as pl

from coop_rules import integrity, payouts, routing
from coop_rules.calendar import parse_month, payment_date
from coop_rules.integrity import OK, PLAN_KEY
from coop_rules.money import MONEY, ZERO, to_money
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import ROW, Code, Dataset
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
    parse and fit their currency) for the reconciliation. `rows`: every row of the file.
    """

    exceptions: pl.DataFrame
    earned: pl.DataFrame
    in_scope_rows: int
    input_sums: pl.DataFrame
    rows: int


@dataclass(frozen=True)
class CheckedInputs:
    """Typed input frames with `OK` per row, the exception rows found in them, and the
    month's earnings (whose exceptions are in `earnings`, not in `exceptions`)."""

    frames: dict[Dataset, pl.DataFrame]
    exceptions: pl.DataFrame
    activity_checked: bool
    earnings: Earnings


@dataclass(frozen=True)
class MonthResult:
    """What one run publishes, before the run id and the month columns are added to exceptions."""

    payouts: pl.DataFrame
    exceptions: pl.DataFrame
    payments: pl.DataFrame
    totals: pl.DataFrame
    reconciliation: dict[str, object]


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


def _mark(frame: pl.DataFrame, exceptions: pl.DataFrame) -> pl.DataFrame:
    """Set `OK` to false on the rows named by `exceptions`."""
    bad = exceptions.get_column("row_number").unique()
    return frame.with_columns((pl.col(OK) & ~pl.col(ROW).is_in(bad.implode())).alias(OK))


def _check(
    dataset: Dataset, text: pl.DataFrame, settings: RuleSettings
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Schema and key checks of one dataset; returns the typed frame and its exceptions."""
    spec = INPUTS[dataset]
    found = [validate_text(text, spec, settings)]
    for keys in spec.unique_keys:
        dupes = integrity.duplicate_keys(text, keys, spec.record_key)
        found.append(finish_exceptions(dupes, dataset))
    frame = text.with_columns(pl.lit(True).alias(OK))
    for exceptions in found:
        frame = _mark(frame, exceptions)
    return frame, found


def check_inputs(
    text: dict[Dataset, pl.DataFrame | None],
    month: str,
    settings: RuleSettings,
    earnings: Iterable[pl.DataFrame] | None = None,
) -> CheckedInputs:
    """Validate every dataset (SPEC 3): forms, keys and references, in dependency order.

    The earnings come as `earnings`, chunks of text in file order, or else whole as
    `text[Dataset.EARNINGS]`.
    """
    references = check_references(text, settings)
    if earnings is None:
        whole = text[Dataset.EARNINGS]
        assert whole is not None, "earnings are required"
        earnings = [whole]
    tally = EarningsTally(month, settings, references)
    for chunk in earnings:
        tally.add(chunk)
    return tally.finish()


@dataclass(frozen=True)
class References:
    """The checked datasets other than earnings: typed frames with `OK` per row, and their
    exception rows."""

    frames: dict[Dataset, pl.DataFrame]
    exceptions: pl.DataFrame
    activity_checked: bool


def check_references(
    text: dict[Dataset, pl.DataFrame | None], settings: RuleSettings
) -> References:
    """Validate programs, plans, limits, campaigns and activities (SPEC 3), in that order."""
    all_found: list[pl.DataFrame] = []
    frames: dict[Dataset, pl.DataFrame] = {}

    def add(dataset: Dataset, frame: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
        found = finish_exceptions(found, dataset)
        all_found.append(found)
        return _mark(frame, found)

    def finish(dataset: Dataset, frame: pl.DataFrame, found: list[pl.DataFrame]) -> pl.DataFrame:
        all_found.extend(found)
        return parse_text(frame, INPUTS[dataset])

    programs, found = _check(Dataset.PROGRAMS, text[Dataset.PROGRAMS], settings)
    programs = finish(Dataset.PROGRAMS, programs, found)
    programs = add(Dataset.PROGRAMS, programs, integrity.program_dates(programs))

    plans, found = _check(Dataset.PLANS, text[Dataset.PLANS], settings)
    found.append(
        finish_exceptions(
            integrity.duplicate_keys(plans, PLAN_KEY, "plan_id", Code.DUPLICATE_PLAN),
            Dataset.PLANS,
        )
    )
    for exceptions in found[-1:]:
        plans = _mark(plans, exceptions)
    plans = finish(Dataset.PLANS, plans, found)
    plans = add(
        Dataset.PLANS,
        plans,
        integrity.unknown_references(plans, programs, ["program", "period"], "plan_id", "programs"),
    )
    plans = add(Dataset.PLANS, plans, integrity.plan_dates(plans, settings))

    limits, found = _check(Dataset.PLAN_LIMITS, text[Dataset.PLAN_LIMITS], settings)
    limits = finish(Dataset.PLAN_LIMITS, limits, found)
    limits = add(
        Dataset.PLAN_LIMITS,
        limits,
        integrity.unknown_references(limits, plans, ["plan_id"], "plan_id", "plans"),
    )
    # The decimals of a limit are checked against its plan's currency on the text.
    limit_text = text[Dataset.PLAN_LIMITS].join(limits.select(ROW, OK), on=ROW, how="left")
    limits = add(Dataset.PLAN_LIMITS, limits, integrity.limit_currency(limit_text, plans, settings))

    activity_checked = (
        text.get(Dataset.CAMPAIGNS) is not None or text.get(Dataset.ACTIVITIES) is not None
    )
    for dataset, parent, on, parent_name in (
        (Dataset.CAMPAIGNS, plans, ["plan_id"], "plans"),
        (Dataset.ACTIVITIES, None, ["campaign_id"], "campaigns"),
    ):
        source = text.get(dataset)
        if source is None:
            source = pl.DataFrame(
                schema={**{c: pl.String for c in INPUTS[dataset].columns}, ROW: pl.Int64}
            )
        frame, found = _check(dataset, source, settings)
        frame = finish(dataset, frame, found)
        parent_frame = parent if parent is not None else frames[Dataset.CAMPAIGNS]
        frame = add(
            dataset,
            frame,
            integrity.unknown_references(
                frame, parent_frame, on, INPUTS[dataset].record_key, parent_name
            ),
        )
        frames[dataset] = frame

    frames.update({Dataset.PROGRAMS: programs, Dataset.PLANS: plans, Dataset.PLAN_LIMITS: limits})
    exceptions = pl.concat([e for e in all_found if not e.is_empty()] or [empty_exceptions()])
    return References(frames, exceptions, activity_checked)


class EarningsTally:
    """The month's earnings, taken one chunk of text at a time (SPEC 3 and 4).

    Of each chunk, the in-scope rows are validated by the Earnings schema, parsed and routed.
    Kept: the exception rows, the sums per plan and per currency, and a slim ledger row per
    earnings row (row, earning_id, in scope, plan, amount, currency: about 45 bytes).
    Duplicate earning_ids can span chunks: `finish` finds them in the ledger and takes their
    rows back out of the sums.
    """

    def __init__(self, month: str, settings: RuleSettings, references: References) -> None:
        self.month = month
        self.settings = settings
        self.references = references
        self.table = routing.routing_table(
            references.frames[Dataset.PROGRAMS],
            references.frames[Dataset.PLANS],
            parse_month(month),
        )
        self.currency = pl.Enum(sorted(settings.currencies))
        self.rows = 0
        self.in_scope_rows = 0
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
        found = validate_text(scoped, spec, self.settings)
        typed = parse_text(_mark(scoped.with_columns(pl.lit(True).alias(OK)), found), spec)
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

    def finish(self) -> CheckedInputs:
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
        earnings = Earnings(
            exceptions=pl.concat(
                [e for e in exceptions if not e.is_empty()] or [empty_exceptions()]
            ),
            earned=_take_back(self._earned, _earned(taken_back.select("plan_id", "amount"))),
            in_scope_rows=self.in_scope_rows,
            input_sums=pl.concat(self._input)
            .group_by("currency")
            .agg(to_money(pl.col("input").sum()).alias("input")),
            rows=self.rows,
        )
        references = self.references
        return CheckedInputs(
            references.frames, references.exceptions, references.activity_checked, earnings
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
    fits its currency (SPEC 5), so the reconciliation can account for every amount."""
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


def plans_with_activity(frames: dict[Dataset, pl.DataFrame]) -> pl.DataFrame:
    """Plans that have at least one valid activity in a valid campaign."""
    campaigns = frames[Dataset.CAMPAIGNS].filter(pl.col(OK)).select("campaign_id", "plan_id")
    activities = frames[Dataset.ACTIVITIES].filter(pl.col(OK)).select("campaign_id")
    return campaigns.join(activities, on="campaign_id", how="semi").select("plan_id").unique()


def reconcile(
    earnings: Earnings, payout_rows: pl.DataFrame, exceptions: pl.DataFrame
) -> dict[str, object]:
    """The figures of SPEC 4's reconciliation, and whether each holds.

    Rows: in-scope = routed to payouts + with exceptions (each row once, however many problems).
    Amounts per currency: in-scope amounts that parse and fit = earned + exception amounts.
    """
    earning_rows = exceptions.filter(pl.col("source") == Dataset.EARNINGS.value)
    exception_rows = earning_rows.unique("row_number")
    in_scope_rows = earnings.in_scope_rows
    routed_rows = int(payout_rows.get_column("earnings_count").sum() or 0)
    rows_hold = in_scope_rows == routed_rows + exception_rows.height

    input_sums = earnings.input_sums
    earned = payout_rows.group_by("currency").agg(
        to_money(pl.col("earned_amount").sum()).alias("earned")
    )
    excepted = (
        exception_rows.filter(pl.col("amount").is_not_null())
        .group_by("currency")
        .agg(to_money(pl.col("amount").sum()).alias("exceptions"))
    )
    per_currency = (
        input_sums.join(earned, on="currency", how="full", coalesce=True)
        .join(excepted, on="currency", how="full", coalesce=True)
        .with_columns(pl.col("input", "earned", "exceptions").fill_null(ZERO))
        .with_columns((pl.col("input") == pl.col("earned") + pl.col("exceptions")).alias("holds"))
        .sort("currency")
    )
    rows_balanced = payout_rows.filter(
        pl.col("earned_amount") != pl.col("payable_amount") + pl.col("unpaid_amount")
    ).height
    amounts_hold = bool(per_currency.get_column("holds").all())
    return {
        "in_scope_rows": in_scope_rows,
        "routed_rows": routed_rows,
        "exception_rows": exception_rows.height,
        "rows_hold": rows_hold,
        "per_currency": [
            {
                "currency": row["currency"],
                "input_amount": str(row["input"]),
                "earned_amount": str(row["earned"]),
                "exception_amount": str(row["exceptions"]),
                "holds": row["holds"],
            }
            for row in per_currency.iter_rows(named=True)
        ],
        "amounts_hold": amounts_hold,
        "payout_rows_unbalanced": rows_balanced,
        "holds": rows_hold and amounts_hold and rows_balanced == 0,
    }


def compute_month(
    checked: CheckedInputs,
    month: str,
    settings: RuleSettings,
    run_id: str,
    paid_before: pl.DataFrame,
) -> MonthResult:
    """Decide each plan's payout from its routed earnings (SPEC 4)."""
    frames = checked.frames
    pay_day: date = payment_date(month, settings.payment_day)
    valid_plans = frames[Dataset.PLANS].filter(pl.col(OK))
    periods = (
        frames[Dataset.PROGRAMS]
        .filter(pl.col(OK))
        .select("program", "period", "period_start", "period_end")
    )
    payout_frame = payouts.payout_rows(
        earned=checked.earnings.earned.lazy(),
        plans=valid_plans.select(payouts.PLAN_COLUMNS),
        periods=periods,
        limits=frames[Dataset.PLAN_LIMITS]
        .filter(pl.col(OK))
        .select("plan_id", "effective_month", "limit_amount"),
        plans_with_activity=plans_with_activity(frames) if checked.activity_checked else None,
        paid_before=paid_before.select("plan_id", pl.col("paid_before_amount").cast(MONEY)),
        month=month,
        pay_day=pay_day,
        run_id=run_id,
        settings=settings,
    ).collect()
    exceptions = pl.concat([checked.exceptions, checked.earnings.exceptions]).sort(
        "source", "row_number", "code", "column", nulls_last=True
    )
    return MonthResult(
        payouts=payout_frame,
        exceptions=exceptions,
        payments=payouts.payments(payout_frame),
        totals=payouts.totals(payout_frame),
        reconciliation=reconcile(checked.earnings, payout_frame, exceptions),
    )
