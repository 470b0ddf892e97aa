"""Routing of in-scope earnings rows to exactly one place: a plan, or an exception
(docs/payouts.md, "In scope, and routing")."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

import polars as pl

from coop_rules.forms import MPN_ID_FORM
from coop_rules.integrity import OK, PLAN_KEY
from coop_rules.vocabulary import ROW_NUMBER, Code

ROUTE = "__route"


def period_of_month(programs: pl.DataFrame, first_day: date) -> pl.DataFrame:
    """The valid period of each program that contains the first day of the month."""
    return programs.filter(
        pl.col(OK)
        & (pl.col("period_start") <= pl.lit(first_day))
        & (pl.col("period_end") >= pl.lit(first_day))
    ).select("program", "period", "period_start", "period_end")


def plan_keys(plans: pl.DataFrame) -> pl.DataFrame:
    """Every plan key with how many plan rows carry it, its plan and whether that row is valid.

    All plan rows count here, valid or not: an earnings row that matches an invalid plan is
    `PLAN_INVALID`, not `NO_PLAN`.
    """
    return (
        plans.filter(pl.all_horizontal(pl.col(k).is_not_null() for k in PLAN_KEY))
        .group_by(PLAN_KEY)
        .agg(
            pl.len().alias("__plan_rows"),
            pl.col("plan_id").first(),
            pl.col(OK).all().alias("__plan_ok"),
            pl.col("currency").first().alias("__plan_currency"),
        )
    )


def route_code() -> pl.Expr:
    """The first routing code that applies to a valid earnings row, in the order of
    docs/payouts.md; null when the row is routed to its plan."""
    return (
        pl.when(pl.col("period").is_null())
        .then(pl.lit(Code.NO_PROGRAM_PERIOD.value))
        .when(pl.col("__plan_rows").is_null())
        .then(pl.lit(Code.NO_PLAN.value))
        .when(pl.col("__plan_rows") > 1)
        .then(pl.lit(Code.DUPLICATE_PLAN.value))
        .when(~pl.col("__plan_ok"))
        .then(pl.lit(Code.PLAN_INVALID.value))
        .when(pl.col("currency") != pl.col("__plan_currency"))
        .then(pl.lit(Code.CURRENCY_MISMATCH.value))
        .otherwise(pl.lit(None, pl.String))
    )


def route_message() -> pl.Expr:
    """What a person is told about a routing exception."""
    code = pl.col(ROUTE)
    return (
        pl.when(code == Code.NO_PROGRAM_PERIOD)
        .then(
            pl.format(
                "program '{}' has no valid period containing the first day of the month",
                pl.col("program"),
            )
        )
        .when(code == Code.NO_PLAN)
        .then(
            pl.format(
                "no plan for mpn_id {}, fund '{}', program '{}', period {}",
                pl.col("mpn_id"),
                pl.col("fund"),
                pl.col("program"),
                pl.col("period"),
            )
        )
        .when(code == Code.DUPLICATE_PLAN)
        .then(
            pl.format(
                "{} plans share mpn_id {}, fund '{}', program '{}', period {}; none can be chosen",
                pl.col("__plan_rows"),
                pl.col("mpn_id"),
                pl.col("fund"),
                pl.col("program"),
                pl.col("period"),
            )
        )
        .when(code == Code.PLAN_INVALID)
        .then(pl.format("the matching plan {} has a row exception", pl.col("plan_id")))
        .when(code == Code.CURRENCY_MISMATCH)
        .then(
            pl.format(
                "currency {} is not the currency {} of plan {}",
                pl.col("currency"),
                pl.col("__plan_currency"),
                pl.col("plan_id"),
            )
        )
    )


# One 64-bit hash of the four key columns: joining on it is several times cheaper than on the
# four text columns, and every match is then checked column by column, so it stays exact.
KEY_HASH = "__plan_key_hash"
PLAN_SIDE = "__plan_"
# The position of a plan key in the routing table: four bytes that name a plan.
PLAN_INDEX = "__plan_index"
# The plan key of the month as one exact 64-bit integer (`packed_key`).
KEY_PACKED = "__plan_key_packed"
# 10 digits need 34 bits; the rest of 64 hold the digit count and the program and fund codes.
MPN_BITS = 34
MPN_LENGTHS = 5  # 6 to 10 digits


@dataclass(frozen=True)
class RoutingTable:
    """What routing needs of programs and plans, built once per run and used for every chunk
    of earnings: the period of each program for the month, and every plan key.

    `hashed`: plan keys are joined on `KEY_HASH` (false only if two plan keys share a hash).
    `packed`: when every plan key packs into one exact integer (`packed_key`), the keys of
    the month's periods by `KEY_PACKED`, with the codes of the plans' programs and funds:
    the join then needs no hash and no comparison of text.
    """

    periods: pl.DataFrame
    plan_keys: pl.DataFrame
    hashed: bool
    packed: PackedKeys | None = None


@dataclass(frozen=True)
class PackedKeys:
    """The plan keys of the month by `KEY_PACKED`, and the codes it packs."""

    keys: pl.DataFrame
    programs: pl.Enum
    funds: pl.Enum


def routing_table(programs: pl.DataFrame, plans: pl.DataFrame, first_day: date) -> RoutingTable:
    """The routing table of the month whose first day is `first_day`.

    Only the plans of the month's program periods can meet its earnings (an earnings row takes
    the period of its program), so only their keys are kept.
    """
    periods = period_of_month(programs, first_day).select("program", "period")
    keys = (
        plan_keys(plans.join(periods, on=["program", "period"], how="semi"))
        .with_row_index(PLAN_INDEX)
        .with_columns(pl.struct(PLAN_KEY).hash().alias(KEY_HASH))
    )
    table = RoutingTable(
        periods=periods,
        plan_keys=keys,
        hashed=keys.get_column(KEY_HASH).n_unique() == keys.height,
    )
    program_codes = pl.Enum(keys.get_column("program").unique().sort())
    fund_codes = pl.Enum(keys.get_column("fund").unique().sort())
    codes = len(program_codes.categories) * len(fund_codes.categories) * MPN_LENGTHS
    if codes >= 1 << (64 - MPN_BITS):
        return table
    # Only a key with a well-formed mpn_id can meet a valid earnings row.
    packed = keys.filter(pl.col("mpn_id").str.contains(MPN_ID_FORM)).select(
        packed_key(program_codes, fund_codes).alias(KEY_PACKED),
        *(c for c in keys.columns if c not in (*PLAN_KEY, KEY_HASH)),
    )
    return replace(table, packed=PackedKeys(packed, program_codes, fund_codes))


def packed_key(programs: pl.Enum, funds: pl.Enum, well_formed: pl.Expr | None = None) -> pl.Expr:
    """mpn_id, its digit count, program and fund as one integer: equal for two rows exactly
    when the four are equal (an mpn_id of 6 to 10 digits, a program and fund of the codes);
    null otherwise. The period is the program's period of the month on both sides.

    `well_formed`: true only where mpn_id is 6 to 10 digits; by default the form is checked
    here. Earnings rows pass `OK`: the Earnings schema checked the form of those rows already.
    """
    mpn = pl.col("mpn_id")
    if well_formed is None:
        well_formed = mpn.str.contains(MPN_ID_FORM)
    program = pl.col("program").cast(programs, strict=False).to_physical().cast(pl.UInt64)
    fund = pl.col("fund").cast(funds, strict=False).to_physical().cast(pl.UInt64)
    length = mpn.str.len_bytes().cast(pl.UInt64) - 6
    code = (program * len(funds.categories) + fund) * MPN_LENGTHS + length
    value = mpn.str.to_integer(strict=False, dtype=pl.UInt64)
    return pl.when(well_formed).then(code * (1 << MPN_BITS) + value)


def with_period(earnings: pl.LazyFrame, table: RoutingTable) -> pl.LazyFrame:
    """Attach to every earnings row its program's period of the month (null for a program
    with none)."""
    # A program has at most one valid period holding the month's first day (overlapping
    # periods are exceptions): a lookup of the few programs, cheaper than a join.
    # A comparison per program, not `replace_strict`: the streaming engine holds every row of
    # a query that looks values up so (docs/performance.md).
    period: pl.Expr = pl.lit(None, pl.String)
    for program, program_period in table.periods.select("program", "period").iter_rows():
        period = (
            pl.when(pl.col("program") == program).then(pl.lit(program_period)).otherwise(period)
        )
    return earnings.with_columns(period.alias("period"))


# The plan keys are the side a join holds: left to choose, polars' streaming engine first
# holds up to ten million earnings rows to compare the sides (1.3 GB at 10M rows, measured).
PLANS_SIDE: Literal["force_right"] = "force_right"


def match_plans(
    earnings: pl.LazyFrame, table: RoutingTable, *, keep_order: bool = True
) -> pl.LazyFrame:
    """Attach to every earnings row the plan columns of its plan key (`plan_keys`; null where
    no plan has it). Rows with a schema exception (`OK` false) match nothing.

    The packed join needs no period (the key of a month's plan is that of its program's period
    of the month), so it adds none; the other joins add it first. `keep_order`: the rows keep
    their order on any engine; without it the streaming engine may give them in any order,
    which is cheaper (a caller that needs an order sorts by `ROW_NUMBER`).
    """
    order: Literal["left", "none"] = "left" if keep_order else "none"
    if table.packed is not None:
        packed = table.packed
        return (
            earnings.with_columns(
                packed_key(packed.programs, packed.funds, pl.col(OK)).alias(KEY_PACKED)
            )
            .join(
                packed.keys.lazy(),
                on=KEY_PACKED,
                how="left",
                maintain_order=order,
                build_side=PLANS_SIDE,
            )
            .drop(KEY_PACKED)
        )
    with_key = with_period(earnings, table)
    if table.hashed:
        plan_side = table.plan_keys.rename({key: f"{PLAN_SIDE}{key}" for key in PLAN_KEY})
        matched = with_key.with_columns(pl.struct(PLAN_KEY).hash().alias(KEY_HASH)).join(
            plan_side.lazy(), on=KEY_HASH, how="left", maintain_order=order, build_side=PLANS_SIDE
        )
        same_key = pl.all_horizontal(
            pl.col(key) == pl.col(f"{PLAN_SIDE}{key}") for key in PLAN_KEY
        ).fill_null(False)
        plan_columns = [c for c in table.plan_keys.columns if c not in (*PLAN_KEY, KEY_HASH)]
        return matched.with_columns(
            pl.when(same_key).then(pl.col(name)).alias(name) for name in plan_columns
        ).drop(KEY_HASH, *(f"{PLAN_SIDE}{key}" for key in PLAN_KEY))
    return with_key.join(
        table.plan_keys.drop(KEY_HASH).lazy(),
        on=list(PLAN_KEY),
        how="left",
        maintain_order=order,
        build_side=PLANS_SIDE,
    )


def route_codes(matched: pl.LazyFrame, table: RoutingTable) -> pl.LazyFrame:
    """Give rows of `match_plans` their period and routing code (`ROUTE`): rows with a schema
    exception keep a null code, they are not routed."""
    # The packed join needed no period (`match_plans`); the others have it already.
    if table.packed is not None:
        matched = with_period(matched, table)
    return matched.with_columns(pl.when(pl.col(OK)).then(route_code()).alias(ROUTE))


def route_earnings(earnings: pl.LazyFrame, table: RoutingTable) -> pl.LazyFrame:
    """Attach to every in-scope earnings row its period, plan and routing code.

    Rows with a schema exception (`OK` false) keep a null code: they are not routed. The rows
    keep their order, on any engine (the exception rows are taken in file order).
    """
    return route_codes(match_plans(earnings, table), table)


def reaches_plan() -> pl.Expr:
    """True for a row of `match_plans` that passed every check and reaches its plan: the rows
    whose `route_code` would be null, told without the period (a row that matched a plan key
    has its program's period of the month) and without making the code's text. False
    otherwise, never null."""
    rows = pl.col("__plan_rows")
    return (
        pl.col(OK)
        & rows.is_not_null()
        & (rows <= 1)
        # As in `route_code`, whose conditions count as not met where they are null.
        & pl.col("__plan_ok").fill_null(True)
        & (pl.col("currency") == pl.col("__plan_currency")).fill_null(True)
    ).fill_null(False)


def routed_plan(column: str = "plan_id") -> pl.Expr:
    """The plan a row of `match_plans` reaches (its `column`: plan_id or PLAN_INDEX); null
    for a row with an exception. Needs no routing code (`reaches_plan`)."""
    return pl.when(reaches_plan()).then(pl.col(column))


def routing_exceptions(routed: pl.LazyFrame) -> pl.LazyFrame:
    """The exception rows of earnings that could not be routed, with their amounts."""
    return routed.filter(pl.col(ROUTE).is_not_null()).select(
        pl.col(ROW_NUMBER),
        pl.col("earning_id").alias("record_key"),
        pl.col(ROUTE).alias("code"),
        pl.lit(None, pl.String).alias("column"),
        pl.lit(None, pl.String).alias("value"),
        route_message().alias("message"),
        pl.col("amount"),
        pl.col("currency"),
    )
