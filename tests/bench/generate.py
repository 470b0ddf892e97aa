"""Generate a realistic synthetic input month (docs/inputs.md) for benchmarks.

Writes ``programs.csv``, ``plans.csv``, ``plan_limits.csv``, ``earnings.csv`` and
``payment_profiles.csv`` into a folder. The output is a pure function of the arguments: every
random draw is a splitmix64 hash of (seed, stream, row number) computed with polars integer
arithmetic (checked against a pure-Python reference at start-up), so the same arguments give
the same files.

    python tests/bench/generate.py OUT_DIR --earnings 10000000 --plans 1000000 --month 2026-04

What the data holds, besides clean rows:

- programs: four programs with fiscal years (July to June) ``FY(M)-1`` and ``FY(M)``;
  ``DYNAMICS`` has no period containing ``M`` (its earnings are ``NO_PROGRAM_PERIOD``).
- plans: statuses mostly ``Approved``; currencies USD/EUR/GBP/JPY by market; about 1% of
  plans with a date outside the program year (or resubmitted after the grace days); a few
  plans sharing one (mpn_id, fund, program, period) key (``DUPLICATE_PLAN``).
- plan_limits: one to four limits per plan, raised within the period, some effective after
  ``M`` (so about 3% of current plans have no limit in force).
- payment_profiles: every partner of the plans, ``Enrolled`` (holds are not what is measured).
- earnings: about 90% in ``M``, the rest in the three months before and the month after;
  about 5% negative reversals; about 2.7% bad rows (see ``BAD_ROWS``).
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import polars as pl

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB

FUNDS = ["MDF", "COOP", "PRESALES"]
UNUSED_FUND = "EVENTS"  # no plan has it: its earnings are NO_PLAN
CURRENT_PROGRAMS = ["AZURE", "M365", "SECURITY"]
RETIRED_PROGRAM = "DYNAMICS"  # only a period before FY(M): NO_PROGRAM_PERIOD
CURRENCIES = ["USD", "EUR", "GBP", "JPY"]
# market, its currency, weight
MARKETS = [
    ("United States", "USD", 35),
    ("United Kingdom", "GBP", 12),
    ("Germany", "EUR", 12),
    ("France", "EUR", 10),
    ("Japan", "JPY", 12),
    ("Netherlands", "EUR", 5),
    ("Spain", "EUR", 5),
    ("Ireland", "EUR", 5),
    ("Canada", "USD", 4),
]
STATUSES = [
    ("Approved", 75),
    ("Submitted", 5),
    ("Under review", 6),
    ("Action required", 3),
    ("Editing", 5),
    ("Rejected", 6),
]
FIRST_NAMES = [
    "anna",
    "ben",
    "chloe",
    "david",
    "emma",
    "felix",
    "grace",
    "hugo",
    "ines",
    "jan",
]
LAST_NAMES = [
    "martin",
    "schmidt",
    "tanaka",
    "dubois",
    "smith",
    "garcia",
    "rossi",
    "jansen",
]

# Earnings row kinds, share of rows (the rest are clean). Codes of docs/inputs.md and
# docs/payouts.md.
BAD_ROWS = [
    ("UNKNOWN_CURRENCY", 0.003),
    ("TOO_MANY_DECIMALS", 0.003),  # INVALID_AMOUNT
    ("INVALID_VALUE", 0.002),  # NaN, Infinity, exponent, thousands separator, symbol
    ("BAD_MPN_ID", 0.002),
    ("EMPTY_AMOUNT", 0.002),  # MISSING_VALUE
    ("DUPLICATE_ID", 0.001),  # the row reuses the previous row's earning_id
    ("NO_PLAN", 0.008),  # unknown mpn_id, or a fund no plan has
    ("NO_PROGRAM_PERIOD", 0.002),
    ("CURRENCY_MISMATCH", 0.004),
]
INVALID_AMOUNTS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1.5e3",
    "1,234.50",
    "$12.00",
    "12,50",
    "n/a",
]
UNKNOWN_CURRENCIES = ["ZZZ", "XBT", "ABC"]
NEGATIVE_SHARE = 0.05
OTHER_MONTH_SHARE = 0.10
DUPLICATE_PLAN_SHARE = 0.0002
FUTURE_LIMIT_SHARE = 0.03
UNKNOWN_PARTNERS = 5_000  # partners with earnings and no plan at all
# Amount of one earnings row: 10 ** uniform(0, SPAN) currency units (USD 1.00 to 3,162.27).
AMOUNT_DECADES = 3.5
JPY_PER_USD = 150
# Amounts are drawn in hundredths; JPY rows use whole yen, hence the factor.
UNITS_FACTOR = {"USD": 1.0, "EUR": 1.0, "GBP": 1.0, "JPY": JPY_PER_USD / 100}
# Index skew of which plan an earnings row goes to: rank = n * u ** SKEW.
SKEW = 1.3


def _splitmix_py(x: int) -> int:
    z = (x + GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def _u64(value: int) -> pl.Expr:
    return pl.lit(value, dtype=pl.UInt64)


def _splitmix(x: pl.Series) -> pl.Series:
    """splitmix64 of a UInt64 series; polars integer arithmetic wraps like C.

    Each step is materialised: as one expression, ``z`` would be a tree that doubles in
    size at every step (eager polars does not share common subexpressions).
    """
    z = pl.col("z")
    frame = pl.DataFrame({"z": x}).select(z=z + _u64(GOLDEN))
    frame = frame.select(z=(z ^ (z // _u64(1 << 30))) * _u64(MIX1))
    frame = frame.select(z=(z ^ (z // _u64(1 << 27))) * _u64(MIX2))
    return frame.select(z=z ^ (z // _u64(1 << 31)))["z"]


class Rng:
    """Counter-based random numbers: draw ``stream`` for given row numbers.

    ``rows`` is a count ``n`` (rows ``0 .. n-1``) or a series of row numbers; the draw of a
    row depends only on (seed, stream, row), so a subset of rows can be drawn on its own.
    Draws are eager series, usable inside polars expressions on a frame of that many rows.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def _key(self, stream: str) -> int:
        key = self.seed & MASK64
        for ch in stream.encode():
            key = _splitmix_py(key ^ ch)
        return key

    def bits(self, rows: int | pl.Series, stream: str) -> pl.Series:
        """64 random bits per row."""
        index = pl.int_range(rows, dtype=pl.UInt64) if isinstance(rows, int) else pl.lit(rows)
        start = pl.select(z=index.cast(pl.UInt64) * _u64(GOLDEN) ^ _u64(self._key(stream)))
        return _splitmix(start["z"])

    def uniform(self, rows: int | pl.Series, stream: str) -> pl.Series:
        """A float in [0, 1) per row."""
        return (self.bits(rows, stream) // (1 << 11)).cast(pl.Float64) / float(1 << 53)

    def below(self, rows: int | pl.Series, stream: str, k: int) -> pl.Series:
        """An integer in [0, k) per row."""
        return (self.bits(rows, stream) % k).cast(pl.Int64)

    def pick(self, rows: int | pl.Series, stream: str, values: list[str]) -> pl.Series:
        """One of the values per row, all equally likely."""
        return pl.Series(values, dtype=pl.String).gather(self.below(rows, stream, len(values)))

    def choice(
        self, rows: int | pl.Series, stream: str, weighted: list[tuple[str, int]]
    ) -> pl.Series:
        """One of the values per row, by integer weight."""
        return self.pick(rows, stream, [value for value, weight in weighted for _ in range(weight)])


def _self_check() -> None:
    """Fail loudly if polars stops wrapping UInt64 arithmetic (determinism rests on it)."""
    xs = [0, 1, 2**63 - 1, 2**64 - 1, 123456789]
    got = _splitmix(pl.Series(xs, dtype=pl.UInt64)).to_list()
    if got != [_splitmix_py(x) for x in xs]:
        raise RuntimeError("polars UInt64 arithmetic does not wrap: generator not deterministic")


def _month_index(month: str) -> int:
    year, mon = (int(part) for part in month.split("-"))
    return year * 12 + mon - 1


def _month_text(index: pl.Expr) -> pl.Expr:
    year = (index // 12).cast(pl.String)
    mon = (index % 12 + 1).cast(pl.String).str.zfill(2)
    return pl.concat_str(year, pl.lit("-"), mon)


def _month_of(day: pl.Expr) -> pl.Expr:
    return day.dt.year().cast(pl.Int64) * 12 + day.dt.month().cast(pl.Int64) - 1


def _fiscal_year(first_day: date) -> int:
    """Fiscal years run July to June; FY26 = 2025-07-01 .. 2026-06-30."""
    return first_day.year + 1 if first_day.month >= 7 else first_day.year


def _period_bounds(fy: int) -> tuple[date, date]:
    return date(fy - 1, 7, 1), date(fy, 6, 30)


def _amount_text(units: pl.Expr, currency: pl.Expr) -> pl.Expr:
    """Plain decimal text of a signed amount in minor units (whole yen for JPY)."""
    digits = units.abs().cast(pl.String).str.zfill(3)
    two = pl.concat_str(
        pl.when(units < 0).then(pl.lit("-")).otherwise(pl.lit("")),
        digits.str.head(-2),
        pl.lit("."),
        digits.str.tail(2),
    )
    return pl.when(currency == "JPY").then(units.cast(pl.String)).otherwise(two)


def _mpn_id(partner: pl.Expr) -> pl.Expr:
    """A distinct 6-10 digit MPN ID per partner index (one length tier per partner % 5)."""
    tier = partner % 5
    k = partner // 5
    length = tier + 6
    low = pl.lit(10, dtype=pl.Int64).pow(length - 1)
    span = low * 9
    # 7919 is coprime with 9 * 10**n, so k -> k * 7919 mod span is one-to-one while k < span.
    return (low + (k * 7919) % span).cast(pl.String)


def _coprime_stride(total: int, start: int) -> int:
    stride = start
    while math.gcd(stride, total) != 1:
        stride += 1
    return stride


def programs_frame(month: str) -> pl.DataFrame:
    """Programs with the fiscal year of ``month`` and the one before."""
    fy = _fiscal_year(date.fromisoformat(month + "-01"))
    rows = []
    for program in [*CURRENT_PROGRAMS, RETIRED_PROGRAM]:
        years = [fy - 1] if program == RETIRED_PROGRAM else [fy - 1, fy]
        for year in years:
            start, end = _period_bounds(year)
            rows.append((program, f"FY{year % 100:02d}", start.isoformat(), end.isoformat()))
    return pl.DataFrame(
        rows, schema=["program", "period", "period_start", "period_end"], orient="row"
    )


def plans_frame(n_plans: int, n_earnings: int, month: str, rng: Rng) -> pl.DataFrame:
    """Plans, with helper columns (``_current`` period, earnings ``_rank``, limit basis)."""
    programs = programs_frame(month)
    combos = programs.join(pl.DataFrame({"fund": FUNDS}), how="cross").with_columns(
        pl.col("period_start").str.to_date(), pl.col("period_end").str.to_date()
    )
    n_combos = combos.height
    # Each plan takes a distinct (partner, combo) slot; about a third of the slots are used.
    n_slots = 3 * n_plans + n_combos
    if (n_slots // n_combos + UNKNOWN_PARTNERS) // 5 >= 900_000:
        raise ValueError("too many plans: the 6-digit MPN IDs would not be distinct")
    stride = _coprime_stride(n_slots, 1_000_003)
    first_day = date.fromisoformat(month + "-01")
    fy = _fiscal_year(first_day)
    current_period = f"FY{fy % 100:02d}"
    m_idx = _month_index(month)

    n = n_plans
    i = pl.col("_i")
    df = pl.DataFrame({"_i": pl.int_range(n_plans, dtype=pl.Int64, eager=True)})
    slot = (i * stride) % n_slots
    dup = (rng.uniform(n, "plan_dup") < DUPLICATE_PLAN_SHARE) & (i > 0)
    # A duplicated plan takes the slot of the plan before it: both are DUPLICATE_PLAN.
    df = df.with_columns(_slot=pl.when(dup).then(((i - 1) * stride) % n_slots).otherwise(slot))
    df = df.with_columns(
        _partner=pl.col("_slot") // n_combos,
        _combo=(pl.col("_slot") % n_combos).cast(pl.UInt32),
    )
    df = df.join(combos.with_row_index("_combo"), on="_combo", how="left", maintain_order="left")
    market_table = [(name, weight) for name, _, weight in MARKETS]
    currency_of = {name: cur for name, cur, _ in MARKETS}
    df = df.with_columns(
        plan_id=pl.concat_str(pl.lit("P"), (i + 1).cast(pl.String).str.zfill(7)),
        mpn_id=_mpn_id(pl.col("_partner")),
        market=rng.choice(n, "market", market_table),
        status=rng.choice(n, "status", STATUSES),
        reviewer_email=pl.concat_str(
            rng.pick(n, "rev1", FIRST_NAMES),
            pl.lit("."),
            rng.pick(n, "rev2", LAST_NAMES),
            pl.lit("@microsoft.com"),
        ),
        _current=pl.col("period") == current_period,
    )
    df = df.with_columns(
        currency=pl.when(rng.uniform(n, "usd_anyway") < 0.03)
        .then(pl.lit("USD"))
        .otherwise(pl.col("market").replace_strict(currency_of, return_dtype=pl.String))
    )

    # Dates: created inside the period (up to a month before M for the current one).
    horizon = pl.min_horizontal(pl.col("period_end"), pl.lit(first_day - timedelta(days=30)))
    span = pl.max_horizontal((horizon - pl.col("period_start")).dt.total_days(), pl.lit(1))
    created = pl.col("period_start") + pl.duration(
        days=(rng.uniform(n, "created") * span).cast(pl.Int64)
    )
    df = df.with_columns(_u_out=rng.uniform(n, "outside"))
    u_out = pl.col("_u_out")
    past = ~pl.col("_current")
    before_start = pl.col("period_start") - pl.duration(days=1 + rng.below(n, "early", 60))
    df = df.with_columns(created_on=pl.when(u_out < 0.007).then(before_start).otherwise(created))
    first = pl.col("created_on") + pl.duration(days=rng.below(n, "first", 22))
    after_end = pl.col("period_end") + pl.duration(days=1 + rng.below(n, "late", 40))
    unsubmitted = (pl.col("status") == "Editing") & (rng.uniform(n, "never") < 0.7)
    df = df.with_columns(
        first_submitted_on=pl.when(unsubmitted)
        .then(pl.lit(None, dtype=pl.Date))
        .when(past & (u_out >= 0.007) & (u_out < 0.010))
        .then(after_end)
        .otherwise(first)
    )
    grace_end = pl.col("period_end") + pl.duration(days=91 + rng.below(n, "grace", 60))
    resubmitted = pl.col("first_submitted_on") + pl.duration(days=rng.below(n, "last", 61))
    df = df.with_columns(
        last_submitted_on=pl.when(pl.col("first_submitted_on").is_null())
        .then(pl.lit(None, dtype=pl.Date))
        .when(past & (u_out >= 0.010) & (u_out < 0.013))
        .then(grace_end)
        .when(rng.uniform(n, "resubmit") < 0.5)
        .then(pl.lit(None, dtype=pl.Date))
        .otherwise(resubmitted)
    )

    # Current plans get a rank: earnings rows pick rank floor(n * u ** SKEW), so a plan's
    # expected share of rows is known and its limit can sit around its expected earnings.
    n_current = int(df["_current"].sum())
    stride2 = _coprime_stride(max(n_current, 1), 7_368_787)
    df = df.with_columns(
        _rank=pl.when(pl.col("_current"))
        .then((pl.int_range(pl.len()).over("_current") * stride2) % max(n_current, 1))
        .otherwise(None)
    )
    rows_in_m = n_earnings * (1 - OTHER_MONTH_SHARE)
    mean_units = (10**AMOUNT_DECADES - 1) / (AMOUNT_DECADES * math.log(10)) * 100
    rank = pl.col("_rank").cast(pl.Float64)
    share = ((rank + 1) / n_current) ** (1 / SKEW) - (rank / n_current) ** (1 / SKEW)
    expected = share * rows_in_m * mean_units * (1 - 2 * NEGATIVE_SHARE)
    past_base = 10 ** (5 + 2 * rng.uniform(n, "past_limit"))  # USD 1,000 to 100,000
    factor = 10 ** (math.log10(0.5) + math.log10(12) * rng.uniform(n, "limit_factor"))
    df = df.with_columns(
        _limit_units=(
            pl.when(pl.col("_current")).then(expected).otherwise(past_base)
            * factor
            * pl.col("currency").replace_strict(UNITS_FACTOR, return_dtype=pl.Float64)
        ),
        _eff0=_month_of(pl.col("first_submitted_on").fill_null(pl.col("created_on")))
        + rng.below(n, "eff0", 2),
    )
    future = pl.col("_current") & (rng.uniform(n, "future_limit") < FUTURE_LIMIT_SHARE)
    df = df.with_columns(
        _eff0=pl.when(future).then(m_idx + 1 + rng.below(n, "future_gap", 2)).otherwise("_eff0")
    )
    return df


def limits_frame(plans: pl.DataFrame, rng: Rng) -> pl.DataFrame:
    """One to four limits per plan: the first, then raises one to three months apart."""
    n = plans.height
    base = plans.select(
        "_i",
        "plan_id",
        "currency",
        "_limit_units",
        "_eff0",
        _count=rng.choice(n, "limit_count", [("1", 50), ("2", 30), ("3", 15), ("4", 5)]).cast(
            pl.Int64
        ),
        _gap=1 + rng.below(n, "limit_gap", 3),
        _end=_month_of(pl.col("period_end")),
    )
    effective = pl.col("_eff0") + pl.col("_j") * pl.col("_gap")
    # Raises stop at the end of the plan's period.
    rows = (
        base.join(pl.DataFrame({"_j": [0, 1, 2, 3]}), how="cross")
        .filter(pl.col("_j") < pl.col("_count"))
        .filter((pl.col("_j") == 0) | (effective <= pl.col("_end")))
    )
    units = pl.col("_limit_units") * (1 + 0.5 * pl.col("_j"))
    # Limits are round: 10,000 minor units is 100 USD/EUR/GBP or 10,000 yen; at least 5 steps.
    step = 10_000
    whole = pl.max_horizontal(units / step, pl.lit(5.0)).floor().cast(pl.Int64) * step
    return rows.sort("_i", "_j").select(
        "plan_id",
        effective_month=_month_text(effective),
        limit_amount=_amount_text(whole, pl.col("currency")),
    )


def _patch(
    df: pl.DataFrame, mask: pl.Expr, build: Callable[[pl.DataFrame], dict[str, pl.Series]]
) -> pl.DataFrame:
    """Replace some columns on the rows of ``mask``, computing values for those rows only.

    ``build`` gets the selected rows (with their row number ``_i``) and returns new values.
    """
    rows = df.filter(mask)
    if rows.height == 0:
        return df
    return df.with_columns(
        df.get_column(name).clone().scatter(rows["_i"], values.cast(df.schema[name]))
        for name, values in build(rows).items()
    )


def earnings_frame(n_earnings: int, plans: pl.DataFrame, month: str, rng: Rng) -> pl.DataFrame:
    """Earnings rows, mostly of ``month`` and routed to current plans, with some bad rows."""
    current = (
        plans.filter(pl.col("_current"))
        .sort("_rank")
        .select("mpn_id", "program", "fund", "currency")
    )
    n_current = current.height
    if n_current == 0:
        raise ValueError("no plan in the period of the month: use more plans")
    n_partners = int(plans["_partner"].max()) + 1  # type: ignore[arg-type]
    m_idx = _month_index(month)
    n = n_earnings

    # Which plan: rank floor(n_current * u ** SKEW); ranks are rows of `current`.
    rank = (n_current * rng.uniform(n, "pick") ** SKEW).cast(pl.Int64).clip(0, n_current - 1)
    df = current[rank]
    # Row kind: one uniform draw against cumulative shares; the last kind is a clean row.
    kinds = [name for name, _ in BAD_ROWS] + ["OK"]
    edges = pl.Series(list(itertools.accumulate(share for _, share in BAD_ROWS)))
    kind = pl.Series(kinds).gather(edges.search_sorted(rng.uniform(n, "kind"), side="right"))
    first_row = pl.int_range(n, dtype=pl.Int64) == 0  # has no row before it to share an id
    df = df.with_columns(
        _i=pl.int_range(n, dtype=pl.Int64),
        _kind=pl.when(first_row).then(pl.lit("OK")).otherwise(pl.lit(kind)),
    )

    def kind_is(name: str) -> pl.Expr:
        return pl.col("_kind") == name

    # Earning month: mostly M; both rows sharing an earning_id are of M.
    dup = kind_is("DUPLICATE_ID")
    other_month = (
        pl.when(rng.uniform(n, "month") < 0.9)
        .then(m_idx - 1 - rng.below(n, "back", 3))
        .otherwise(pl.lit(m_idx + 1))
    )
    df = df.with_columns(
        earning_id=pl.concat_str(
            pl.lit("E"),
            pl.when(dup)
            .then(pl.col("_i"))
            .otherwise(pl.col("_i") + 1)
            .cast(pl.String)
            .str.zfill(8),
        ),
        earning_month=_month_text(
            pl.when(
                ~(dup | dup.shift(-1, fill_value=False))
                & (rng.uniform(n, "other") < OTHER_MONTH_SHARE)
            )
            .then(other_month)
            .otherwise(pl.lit(m_idx))
        ),
    )

    # Currency of the row, then its amount in that currency's minor units.
    df = _patch(
        df,
        kind_is("UNKNOWN_CURRENCY"),
        lambda rows: {"currency": rng.pick(rows["_i"], "unk_cur", UNKNOWN_CURRENCIES)},
    )

    def other_currency(rows: pl.DataFrame) -> dict[str, pl.Series]:
        position = rows["currency"].replace_strict(
            {c: k for k, c in enumerate(CURRENCIES)}, return_dtype=pl.Int64
        )
        shift = 1 + rng.below(rows["_i"], "other_cur", len(CURRENCIES) - 1)
        return {"currency": pl.Series(CURRENCIES).gather((position + shift) % len(CURRENCIES))}

    df = _patch(df, kind_is("CURRENCY_MISMATCH"), other_currency)
    is_jpy = pl.col("currency") == "JPY"
    magnitude = 10 ** (2 + AMOUNT_DECADES * rng.uniform(n, "amount"))
    units = pl.max_horizontal(
        (magnitude * pl.when(is_jpy).then(UNITS_FACTOR["JPY"]).otherwise(1.0)).cast(pl.Int64), 1
    )
    negative = rng.uniform(n, "negative") < NEGATIVE_SHARE
    df = df.with_columns(_units=pl.when(negative).then(-units).otherwise(units))
    df = df.with_columns(amount=_amount_text(pl.col("_units"), pl.col("currency")))

    # Bad amounts.
    def too_many_decimals(rows: pl.DataFrame) -> dict[str, pl.Series]:
        digit = (1 + rng.below(rows["_i"], "extra", 9)).cast(pl.String)
        point = pl.when(pl.col("currency") == "JPY").then(pl.lit(".")).otherwise(pl.lit(""))
        return {"amount": rows.select(pl.concat_str("amount", point, digit))["amount"]}

    df = _patch(df, kind_is("TOO_MANY_DECIMALS"), too_many_decimals)
    df = _patch(
        df,
        kind_is("INVALID_VALUE"),
        lambda rows: {"amount": rng.pick(rows["_i"], "invalid", INVALID_AMOUNTS)},
    )
    df = _patch(
        df,
        kind_is("EMPTY_AMOUNT"),
        lambda rows: {"amount": pl.Series([None] * rows.height, dtype=pl.String)},
    )

    # Bad or unknown identities.
    def bad_mpn(rows: pl.DataFrame) -> dict[str, pl.Series]:
        mpn = pl.col("mpn_id")
        form = rng.below(rows["_i"], "bad_mpn", 4)
        value = (
            pl.when(form == 0)
            .then(mpn.str.slice(0, 5))  # too short
            .when(form == 1)
            .then(pl.concat_str(mpn, pl.lit("12345")).str.slice(0, 11))  # too long
            .when(form == 2)
            .then(pl.concat_str(pl.lit("MPN"), mpn))
            .otherwise(pl.concat_str(mpn.str.slice(0, 3), pl.lit("-"), mpn.str.slice(3)))
        )
        return {"mpn_id": rows.select(value)["mpn_id"]}

    df = _patch(df, kind_is("BAD_MPN_ID"), bad_mpn)

    def no_plan(rows: pl.DataFrame) -> dict[str, pl.Series]:
        # Half the rows: a partner with no plan at all; the others: a fund no plan has.
        by_mpn = rng.uniform(rows["_i"], "no_plan") < 0.5
        partner = n_partners + rng.below(rows["_i"], "unknown_mpn", UNKNOWN_PARTNERS)
        new = rows.select(
            mpn_id=pl.when(by_mpn).then(_mpn_id(pl.lit(partner))).otherwise("mpn_id"),
            fund=pl.when(by_mpn).then("fund").otherwise(pl.lit(UNUSED_FUND)),
        )
        return {"mpn_id": new["mpn_id"], "fund": new["fund"]}

    df = _patch(df, kind_is("NO_PLAN"), no_plan)
    df = _patch(
        df,
        kind_is("NO_PROGRAM_PERIOD"),
        lambda rows: {"program": pl.Series([RETIRED_PROGRAM] * rows.height)},
    )
    return df.select(
        "earning_id", "mpn_id", "program", "fund", "earning_month", "amount", "currency"
    )


def profiles_frame(plans: pl.DataFrame) -> pl.DataFrame:
    """One enrolled payment profile per partner of the plans."""
    partners = plans.select(pl.col("mpn_id").unique().sort())
    return partners.with_columns(
        profile_status=pl.lit("Enrolled"), action_required_since=pl.lit(None, pl.String)
    )


def _write(df: pl.DataFrame, path: Path, started: float) -> int:
    df.write_csv(path)
    size = path.stat().st_size
    print(
        f"  {path.name:<20} {df.height:>12,} rows {size / 1e6:>10.1f} MB"
        f"  ({time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    return size


def generate(
    out_dir: Path | str, earnings: int, plans: int, month: str, seed: int = 42
) -> dict[str, int]:
    """Write the five CSV files of one input month into ``out_dir``; return bytes per file."""
    _self_check()
    _month_index(month)  # validates the form
    date.fromisoformat(month + "-01")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = Rng(seed)
    started = time.perf_counter()
    print(f"generating {earnings:,} earnings and {plans:,} plans for {month} into {out}")
    sizes = {"programs.csv": _write(programs_frame(month), out / "programs.csv", started)}
    plan_df = plans_frame(plans, earnings, month, rng)
    sizes["plans.csv"] = _write(
        plan_df.select(
            "plan_id",
            "mpn_id",
            "program",
            "fund",
            "period",
            "market",
            "currency",
            "reviewer_email",
            "status",
            "created_on",
            "first_submitted_on",
            "last_submitted_on",
        ),
        out / "plans.csv",
        started,
    )
    sizes["plan_limits.csv"] = _write(limits_frame(plan_df, rng), out / "plan_limits.csv", started)
    sizes["earnings.csv"] = _write(
        earnings_frame(earnings, plan_df, month, rng), out / "earnings.csv", started
    )
    sizes["payment_profiles.csv"] = _write(
        profiles_frame(plan_df), out / "payment_profiles.csv", started
    )
    total = sum(sizes.values())
    print(
        f"  {'total':<20} {'':>17} {total / 1e6:>10.1f} MB  ({time.perf_counter() - started:.1f} s)"
    )
    return sizes


def main(argv: list[str] | None = None) -> int:
    """Command line: ``generate.py OUT_DIR --earnings N --plans P --month YYYY-MM [--seed S]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder to write the CSV files into")
    parser.add_argument("--earnings", type=int, default=10_000_000, help="earnings rows")
    parser.add_argument("--plans", type=int, default=1_000_000, help="plans")
    parser.add_argument("--month", default="2026-04", help="earning month M, YYYY-MM")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    args = parser.parse_args(argv)
    if args.earnings < 1 or args.plans < 1:
        parser.error("--earnings and --plans must be at least 1")
    try:
        date.fromisoformat(args.month + "-01")
    except ValueError:
        parser.error(f"--month must be YYYY-MM, got {args.month!r}")
    generate(args.out_dir, args.earnings, args.plans, args.month, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
