"""Reference core of the payout rules in DuckDB SQL, for benchmarks and cross-checks.

Only the core of docs/payouts.md, on the CSV input files of docs/inputs.md (read as text):

- earnings of month ``M`` whose amount is plain decimal text that fits its currency, whose
  currency is known, whose mpn_id has 6-10 digits and whose earning_id is not repeated
  among the rows of ``M``;
- routed to the plan with the same (mpn_id, fund, program, currency) in the program's
  period that contains the first day of ``M``;
- plans with status ``Approved`` and a limit in force (the latest ``effective_month <= M``);
- the cumulative cap with nothing paid before: ``payable = min(max(earned, 0), limit)``.

Plan dates, duplicate plan keys and invalid plan or limit rows are not checked: this core
pays a superset of the plans the pipeline pays, with the same amounts on the common ones.

With ``--bare``, the **bare core** instead: the same routing, status, limit in force and cap,
and nothing else. It validates no value (an amount is summed if DuckDB's ``TRY_CAST`` reads
it, so ``12.345`` is rounded and an unknown currency counts) and keeps every row of a repeated
earning_id. It is the floor the pipeline's time is judged against, not a reference: its
amounts differ from the pipeline's on the plans such rows reach, so they are not compared to
the cent (the benchmark only checks that it pays every plan the pipeline pays).

    python tests/bench/duckdb_core.py INPUT_DIR 2026-04 OUT.parquet [--bare]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

# Minor units of the currencies the generator uses valid amounts in (coop_rules holds the
# pipeline's own table; keep these in step with it).
MINOR_UNITS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0}

CURRENCIES_SQL = """
CREATE TEMP TABLE currencies AS
    SELECT * FROM (VALUES {values}) AS t(currency, minor_units)
"""

CORE_SQL = r"""
CREATE TEMP TABLE payouts AS
WITH in_month AS (
    SELECT earning_id, mpn_id, program, fund, currency, amount
    FROM read_csv($earnings, header = true, all_varchar = true)
    WHERE earning_month = $month
),
-- Repeated earning_ids (every row sharing one is out). Grouping 64-bit hashes first and
-- the few candidate ids second is exact, and lighter than grouping all the id strings.
repeated_hashes AS (
    SELECT hash(earning_id) AS h FROM in_month GROUP BY h HAVING count(*) > 1
),
repeated_ids AS (
    SELECT earning_id
    FROM in_month SEMI JOIN repeated_hashes ON hash(earning_id) = h
    GROUP BY earning_id HAVING count(*) > 1
),
earnings AS (
    SELECT e.mpn_id, e.program, e.fund, e.currency,
           CAST(e.amount AS DECIMAL(18, 2)) AS amount
    FROM in_month AS e
    JOIN currencies AS c USING (currency)
    ANTI JOIN repeated_ids AS r USING (earning_id)
    WHERE e.earning_id IS NOT NULL
      -- plain decimal text only; DuckDB's cast would round 12.345 to 12.35
      AND regexp_full_match(e.amount, '[+-]?[0-9]{1,16}(\.[0-9]+)?')
      AND length(split_part(e.amount, '.', 2)) <= c.minor_units
      AND regexp_full_match(e.mpn_id, '[0-9]{6,10}')
),
periods AS (
    SELECT program, period
    FROM read_csv($programs, header = true, all_varchar = true)
    WHERE TRY_CAST(period_start AS DATE) <= $first_day
      AND TRY_CAST(period_end AS DATE) >= $first_day
),
plans AS (
    SELECT p.plan_id, p.mpn_id, p.program, p.fund, p.currency
    FROM read_csv($plans, header = true, all_varchar = true) AS p
    JOIN periods USING (program, period)
    WHERE p.status = 'Approved'
),
limits AS (
    SELECT plan_id,
           arg_max(CAST(limit_amount AS DECIMAL(18, 2)), effective_month) AS limit_amount
    FROM read_csv($limits, header = true, all_varchar = true)
    WHERE regexp_full_match(effective_month, '[0-9]{4}-[0-9]{2}')
      AND effective_month <= $month
      AND regexp_full_match(limit_amount, '[+]?[0-9]{1,16}(\.[0-9]{1,2})?')
    GROUP BY plan_id
),
earned AS (
    SELECT p.plan_id, p.currency, sum(e.amount) AS earned_amount
    FROM earnings AS e
    JOIN plans AS p USING (mpn_id, fund, program, currency)
    GROUP BY p.plan_id, p.currency
)
SELECT e.plan_id,
       e.currency,
       CAST(e.earned_amount AS DECIMAL(18, 2)) AS earned_amount,
       CAST(least(greatest(e.earned_amount, 0), l.limit_amount) AS DECIMAL(18, 2))
           AS payable_amount
FROM earned AS e
JOIN limits AS l USING (plan_id)
ORDER BY e.plan_id
"""


BARE_SQL = r"""
CREATE TEMP TABLE payouts AS
WITH earnings AS (
    SELECT mpn_id, program, fund, currency, TRY_CAST(amount AS DECIMAL(18, 2)) AS amount
    FROM read_csv($earnings, header = true, all_varchar = true)
    WHERE earning_month = $month
),
periods AS (
    SELECT program, period
    FROM read_csv($programs, header = true, all_varchar = true)
    WHERE TRY_CAST(period_start AS DATE) <= $first_day
      AND TRY_CAST(period_end AS DATE) >= $first_day
),
plans AS (
    SELECT p.plan_id, p.mpn_id, p.program, p.fund, p.currency
    FROM read_csv($plans, header = true, all_varchar = true) AS p
    JOIN periods USING (program, period)
    WHERE p.status = 'Approved'
),
limits AS (
    SELECT plan_id,
           arg_max(TRY_CAST(limit_amount AS DECIMAL(18, 2)), effective_month) AS limit_amount
    FROM read_csv($limits, header = true, all_varchar = true)
    WHERE effective_month <= $month
    GROUP BY plan_id
),
earned AS (
    -- the row's currency is part of the key only so that no sum mixes currencies
    SELECT p.plan_id, p.currency, sum(e.amount) AS earned_amount
    FROM earnings AS e
    JOIN plans AS p USING (mpn_id, fund, program, currency)
    GROUP BY p.plan_id, p.currency
)
SELECT e.plan_id,
       e.currency,
       CAST(e.earned_amount AS DECIMAL(18, 2)) AS earned_amount,
       CAST(least(greatest(e.earned_amount, 0), l.limit_amount) AS DECIMAL(18, 2))
           AS payable_amount
FROM earned AS e
JOIN limits AS l USING (plan_id)
ORDER BY e.plan_id
"""


def _input_csv(input_dir: Path, stem: str) -> str:
    path = input_dir / f"{stem}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (the DuckDB core reads CSV inputs only)")
    return str(path)


def duckdb_core(
    input_dir: Path | str,
    month: str,
    out_path: Path | str,
    threads: int | None = None,
    *,
    bare: bool = False,
) -> dict[str, dict[str, Decimal | int]]:
    """Compute the core payouts of ``month``, write them to ``out_path`` (Parquet).

    ``bare=True`` runs the bare core (no validation, no duplicate ids; see the module).
    Returns, per currency, ``{"payable": total payable, "plans": plans paid}`` (a plan
    with a negative net is paid 0 and counted, as the pipeline's ``PAY`` rows).
    """
    input_dir = Path(input_dir)
    first_day = date.fromisoformat(month + "-01")
    values = ", ".join(f"('{code}', {units})" for code, units in MINOR_UNITS.items())
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.execute(CURRENCIES_SQL.format(values=values))
        con.execute(
            BARE_SQL if bare else CORE_SQL,
            {
                "earnings": _input_csv(input_dir, "earnings"),
                "programs": _input_csv(input_dir, "programs"),
                "plans": _input_csv(input_dir, "plans"),
                "limits": _input_csv(input_dir, "plan_limits"),
                "month": month,
                "first_day": first_day,
            },
        )
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        con.execute("COPY payouts TO $out (FORMAT parquet)", {"out": str(out)})
        rows = con.execute(
            "SELECT currency, sum(payable_amount), count(*) FROM payouts "
            "GROUP BY currency ORDER BY currency"
        ).fetchall()
    finally:
        con.close()
    return {currency: {"payable": payable, "plans": plans} for currency, payable, plans in rows}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``duckdb_core.py INPUT_DIR YYYY-MM OUT.parquet [--threads N] [--bare]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input_dir", type=Path, help="folder with the input CSV files")
    parser.add_argument("month", help="earning month M, YYYY-MM")
    parser.add_argument("out_path", type=Path, help="Parquet file to write, one row per plan")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    parser.add_argument(
        "--bare",
        action="store_true",
        help="the bare core: routing, status, limit, cap; no validation, no duplicate ids",
    )
    args = parser.parse_args(argv)
    try:
        date.fromisoformat(args.month + "-01")
    except ValueError:
        parser.error(f"month must be YYYY-MM, got {args.month!r}")
    started = time.perf_counter()
    try:
        totals = duckdb_core(
            args.input_dir, args.month, args.out_path, args.threads, bare=args.bare
        )
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    summary = {
        "month": args.month,
        "core": "bare" if args.bare else "full",
        "seconds": round(elapsed, 3),
        "totals": {
            cur: {"payable": str(t["payable"]), "plans": t["plans"]} for cur, t in totals.items()
        },
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
