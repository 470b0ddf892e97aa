"""Time each stage of one month, without Prefect, over an input folder (docs/performance.md).

    python tests/bench/generate.py DIR --earnings 10000000 --plans 1000000 --month 2026-04
    python tests/bench/stage_times.py DIR --month 2026-04

Runs the month's stages in order through the runner (`flows.run.run_month`), as the CLI's flow
does but called directly, into a fresh output folder, and prints per stage its wall time, its
CPU time (user and system) and the process's peak resident memory after it; then the whole.
The first run after the inputs are written reads them from the page cache only if they are
still there: run it twice and keep the second, or compare two versions taken in turn.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# As the command sets it (flows/cli.py), before polars is imported.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:250,muzzy_decay_ms:0")

from flows.month import RunOptions  # noqa: E402
from flows.run import run_month  # noqa: E402
from flows.stages import Stage  # noqa: E402


def usage() -> tuple[float, float, float]:
    """User and system CPU seconds and peak resident MiB of this process so far."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime, used.ru_stime, used.ru_maxrss / 1024


def timed(stage: Stage[Any]) -> Callable[..., Any]:
    """The stage as the runner calls it, printing what it took."""

    def call(*args: Any) -> Any:
        started = time.perf_counter()
        user, system, _ = usage()
        result = stage.run(*args)
        user_after, system_after, peak = usage()
        print(
            f"{stage.name:<17} {time.perf_counter() - started:7.2f} s wall "
            f"{user_after - user:7.2f} s user {system_after - system:6.2f} s system "
            f"{peak:7.0f} MiB peak",
            flush=True,
        )
        return result

    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="the input folder of the month")
    parser.add_argument("--month", default="2026-04", help="the month (default: %(default)s)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="coop-payouts-stages-") as output:
        outcome = run_month(
            RunOptions(month=args.month, input_dir=args.input, output_dir=Path(output)), timed
        )
    user, system, peak = usage()
    print(
        f"{'whole':<17} {time.perf_counter() - started:7.2f} s wall {user:7.2f} s user "
        f"{system:6.2f} s system {peak:7.0f} MiB peak ({outcome.status})"
    )
    return 0 if outcome.status in ("published", "unchanged") else 1


if __name__ == "__main__":
    sys.exit(main())
