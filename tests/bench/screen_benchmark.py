"""Time the one-pass screen (`schemas.inputs.passes`) over a generated input folder.

    python tests/bench/generate.py DIR --earnings 1000000 --plans 100000 --month 2026-04
    python tests/bench/screen_benchmark.py DIR

Prints, per dataset, the rows and the best of a few runs of the screen with and without the
`visible_text` check (taken in turn, so a busy machine slows both alike); and, over the
earnings columns, the cost of expressions that look for invisible or control characters.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import pandera.polars as pa
import polars as pl

from coop_rules.settings import parse_rules
from coop_rules.vocabulary import Dataset
from flows.reading import find_inputs, read_text
from flows.rules import shipped_rules_text
from schemas.inputs import INPUTS, passes, schema_for

REPEATS = 7


def best_of(
    *works: Callable[[], object], clock: Callable[[], float] = time.perf_counter
) -> list[float]:
    """The best time of each of `works` by `clock`, run in turn `REPEATS` times."""
    times: list[list[float]] = [[] for _ in works]
    for _ in range(REPEATS):
        for spent, work in zip(times, works, strict=True):
            started = clock()
            work()
            spent.append(clock() - started)
    return [min(spent) for spent in times]


def without_visible_text(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    for name, column in schema.columns.items():
        checks = [check for check in column.checks if check.name != "visible_text"]
        schema = schema.update_column(name, checks=checks)
    return schema


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    settings = parse_rules(shipped_rules_text(), shipped_rules_text())
    files = find_inputs(args.folder)
    print(f"polars {pl.__version__}, {pl.thread_pool_size()} threads, best of {REPEATS}")
    for dataset in (Dataset.EARNINGS, Dataset.PLANS):
        text, _ = read_text(files[dataset])
        schema = schema_for(INPUTS[dataset], settings)
        before = without_visible_text(schema)
        works = (lambda t=text, s=before: passes(t, s), lambda t=text, s=schema: passes(t, s))
        # CPU time as well as wall time: on a shared machine it moves less with the load.
        for clock_name, clock in (("wall", time.perf_counter), ("CPU", time.process_time)):
            bare, full = best_of(*works, clock=clock)
            print(
                f"passes({dataset.value}): {text.height:,} rows, {clock_name} {bare:.3f} s "
                f"without visible_text, {full:.3f} s with it (+{(full - bare) / bare:.0%})"
            )
    text, _ = read_text(files[Dataset.EARNINGS])
    columns = INPUTS[Dataset.EARNINGS].columns
    candidates = {
        r"contains [\p{Cc}\p{Cf}]": lambda c: pl.col(c).str.contains(r"[\p{Cc}\p{Cf}]"),
        r"contains [^ -~] (any byte outside printable ASCII)": lambda c: pl.col(c).str.contains(
            r"[^ -~]"
        ),
        "len_bytes != len_chars (non-ASCII only)": lambda c: (
            pl.col(c).str.len_bytes() != pl.col(c).str.len_chars()
        ),
    }
    works = [lambda e=e: text.select(e(c) for c in columns) for e in candidates.values()]
    for label, seconds in zip(candidates, best_of(*works), strict=True):
        print(f"{label}: {len(columns)} columns {seconds:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
