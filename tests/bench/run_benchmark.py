"""Benchmark ``coop-payouts run`` against two DuckDB cores, and cross-check them.

For each size, generates an input month (cached in the data folder), then runs, ``--runs``
times each and interleaved, as separate processes, the engines of ``--engines``:

- ``duckdb``, the reference core, which also drops repeated earning_ids and invalid amounts:
  ``python tests/bench/duckdb_core.py INPUT MONTH OUT.parquet``;
- ``duckdb-bare``, the bare core (routing, status, limit in force, cap; no validation, no
  duplicate ids), the floor the CLI's time is judged against: the same with ``--bare``;
- ``cli``: ``coop-payouts run --month MONTH --input INPUT --output FRESH_DIR``;
- ``cli-baseline``, with ``--baseline-cli PATH``: the same command of another installed version
  (e.g. an older commit's ``.venv/bin/coop-payouts``), to compare two versions interleaved.

Each child's wall time, CPU time (user + system) and peak RSS are measured from its own
rusage (``os.wait4``), as ``/usr/bin/time`` does: the peak is that of the largest single
process of the child's tree (the child or a descendant it waited for), not a sum.

The table gives, per size, the CLI's wall, CPU and peak memory over each DuckDB engine's, and,
when several sizes run, each engine's peak over its peak at the previous size.

Then the published payouts of the last CLI run are compared with the last ``duckdb`` output on
the plans both pay (CLI ``outcome == "PAY"``): payable_amount per plan and totals per
currency, to the cent. The bare core's amounts are not comparable (it sums every row of a
repeated earning_id, and rows the pipeline rejects as invalid), so of it only the plans are
checked: it must pay every plan the CLI pays; how many amounts agree is printed for
information. Exit status: 0 all runs succeeded and agree, 1 a run failed or a mismatch.

    python tests/bench/run_benchmark.py --sizes 1000000,10000000 --runs 3

Without a Prefect server, each CLI run starts a temporary one (7-13 s, included in the CLI
figures). To leave it out, start ``prefect server start`` in another terminal first and pass
``--prefect-api-url http://127.0.0.1:4200/api``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
GENERATOR = HERE / "generate.py"
DUCKDB_CORE = HERE / "duckdb_core.py"
DEFAULT_DATA_DIR = Path(tempfile.gettempdir()) / "coop-payouts-bench"
ENGINES = ("duckdb", "duckdb-bare", "cli")
BASELINE = "cli-baseline"
DUCKDB_ENGINES = ("duckdb", "duckdb-bare")


@dataclass
class Measure:
    """One child process: wall seconds, CPU seconds, peak RSS in KiB, exit code."""

    wall: float
    cpu: float
    max_rss_kib: int
    returncode: int

    @property
    def peak_mib(self) -> float:
        """Peak resident set size in MiB."""
        return self.max_rss_kib / 1024


def run_child(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> Measure:
    """Run ``cmd`` as a child process, output to ``log_path``; measure it from its rusage."""
    with log_path.open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measure(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        max_rss_kib=usage.ru_maxrss,  # KiB on Linux
        returncode=proc.returncode,
    )


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join("    | " + line for line in text[-lines:])


def ensure_data(
    data_dir: Path, earnings: int, plans: int, month: str, seed: int
) -> tuple[Path, bool]:
    """Return the input folder for this size, generating it unless cached; and whether new."""
    folder = data_dir / f"earnings-{earnings}-plans-{plans}-{month}-seed{seed}"
    marker = folder.with_name(folder.name + ".complete")  # outside: the CLI reads the folder
    # A folder cached before payment profiles were required lacks their file: made anew.
    if marker.is_file() and (folder / "payment_profiles.csv").is_file():
        print(f"using cached input {folder}")
        return folder, False
    shutil.rmtree(folder, ignore_errors=True)
    cmd = [sys.executable, str(GENERATOR), str(folder)]
    cmd += ["--earnings", str(earnings), "--plans", str(plans), "--month", month]
    cmd += ["--seed", str(seed)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    took = time.perf_counter() - started
    marker.write_text(json.dumps({"earnings": earnings, "plans": plans, "month": month}))
    print(f"generated in {took:.1f} s")
    return folder, True


def find_cli() -> str | None:
    """The ``coop-payouts`` console script of this environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "coop-payouts"
    if beside.is_file():
        return str(beside)
    return shutil.which("coop-payouts")


def check_prefect(url: str) -> None:
    """Warn if the Prefect API does not answer (the CLI runs would then fail or wait)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=5) as response:
            response.read()
    except OSError as exc:
        print(f"warning: the Prefect API at {url} does not answer ({exc});")
        print("         start it first with: prefect server start")


def compare(cli_output: Path, duckdb_parquet: Path, month: str) -> bool:
    """Compare the CLI's published PAY rows with the DuckDB core; print; True if they agree."""
    money = pl.Decimal(18, 2)
    cli = pl.scan_parquet(cli_output / "payouts")
    if "earning_month" in cli.collect_schema().names():
        cli = cli.filter(pl.col("earning_month").cast(pl.String) == month)
    cli = cli.select(
        "plan_id", "currency", "outcome", pl.col("payable_amount").cast(money)
    ).collect()
    duck = pl.read_parquet(duckdb_parquet).select(
        "plan_id", "currency", pl.col("payable_amount").cast(money)
    )
    pay = cli.filter(pl.col("outcome") == "PAY")
    both = pay.join(duck, on="plan_id", how="inner", suffix="_duckdb")
    cli_only = pay.join(duck, on="plan_id", how="anti")
    differ = both.filter(
        (pl.col("payable_amount") != pl.col("payable_amount_duckdb"))
        | (pl.col("currency") != pl.col("currency_duckdb"))
    )
    totals = (
        both.group_by("currency")
        .agg(
            plans=pl.len(),
            cli=pl.col("payable_amount").sum(),
            duckdb=pl.col("payable_amount_duckdb").sum(),
        )
        .sort("currency")
    )
    # Plans the core pays but the CLI does not: expected (plan dates, duplicates, ...).
    duck_only = (
        duck.join(pay, on="plan_id", how="anti")
        .join(cli.select("plan_id", "outcome"), on="plan_id", how="left")
        .group_by(pl.col("outcome").fill_null("(no payout row)"))
        .len()
        .sort("len", descending=True)
    )

    print(f"\ncorrectness on {month}: {both.height:,} plans paid by both")
    print(f"  {'currency':<8} {'plans':>9} {'CLI payable':>20} {'DuckDB payable':>20}")
    for row in totals.iter_rows(named=True):
        mark = "" if row["cli"] == row["duckdb"] else "   <- differs"
        cur, plans, cli_total, duck_total = row["currency"], row["plans"], row["cli"], row["duckdb"]
        print(f"  {cur:<8} {plans:>9,} {cli_total:>20,} {duck_total:>20,}{mark}")
    if duck_only.height:
        detail = ", ".join(f"{outcome} {n:,}" for outcome, n in duck_only.iter_rows())
        print(f"  paid by the DuckDB core only (its rules are fewer): {detail}")
    ok = True
    if cli_only.height:
        ok = False
        print(f"  MISMATCH: {cli_only.height:,} plans paid by the CLI, absent from DuckDB, e.g.")
        print(cli_only.head(10))
    if differ.height:
        ok = False
        print(f"  MISMATCH: {differ.height:,} plans with a different payable_amount, e.g.")
        print(differ.head(10))
    if ok and not both.height:
        ok = False
        print("  MISMATCH: no plan is paid by both: nothing was compared")
    print("  OK" if ok else "  FAILED")
    return ok


def check_bare(cli_output: Path, bare_parquet: Path, month: str) -> bool:
    """Check the bare core pays every plan the CLI pays; print; True if it does.

    Amounts are only counted, not checked: the bare core keeps repeated earning_ids and
    rows the pipeline rejects, so a plan such rows reach is paid a different amount.
    """
    money = pl.Decimal(18, 2)
    cli = pl.scan_parquet(cli_output / "payouts")
    if "earning_month" in cli.collect_schema().names():
        cli = cli.filter(pl.col("earning_month").cast(pl.String) == month)
    pay = (
        cli.filter(pl.col("outcome") == "PAY")
        .select("plan_id", pl.col("payable_amount").cast(money))
        .collect()
    )
    bare = pl.read_parquet(bare_parquet).select("plan_id", pl.col("payable_amount").cast(money))
    both = pay.join(bare, on="plan_id", how="inner", suffix="_bare")
    missing = pay.join(bare, on="plan_id", how="anti")
    same = both.filter(pl.col("payable_amount") == pl.col("payable_amount_bare")).height
    print(
        f"\nbare core on {month}: pays {bare.height:,} plans; of the CLI's {pay.height:,},"
        f" {both.height:,} paid, {same:,} of them the same amount (not checked: see --help)"
    )
    if missing.height:
        print(f"  MISMATCH: {missing.height:,} plans paid by the CLI, absent from the bare core")
        print(missing.head(10))
        print("  FAILED")
        return False
    print("  OK")
    return True


def _stats(measures: list[Measure]) -> dict[str, float]:
    walls = [m.wall for m in measures]
    peaks = [m.peak_mib for m in measures]
    return {
        "median": statistics.median(walls),
        "min": min(walls),
        "max": max(walls),
        "cpu": statistics.median(m.cpu for m in measures),
        "peak": statistics.median(peaks),
        "peak_max": max(peaks),
    }


def print_table(results: dict[tuple[int, str], list[Measure]]) -> None:
    """Median/min/max wall seconds, median CPU seconds and peak MiB per size and engine.

    Then, per size, the CLI over each DuckDB engine (wall, CPU and peak medians: on a busy
    machine the CPU ratio is the steadier one) and each
    engine's peak over its peak at the previous size (does memory grow with the month?).
    """
    print(
        f"\n{'earnings':>12} {'engine':<12} {'runs':>4} {'wall median':>12} {'min':>7}"
        f" {'max':>7} {'CPU s':>7} {'peak MiB':>9} {'max MiB':>8} {'peak growth':>14}"
    )
    sizes = sorted({size for size, _ in results})
    previous: dict[str, tuple[int, float]] = {}  # engine -> (size, median peak)
    for size in sizes:
        stats = {}
        for engine in (*ENGINES, BASELINE):
            measures = [m for m in results.get((size, engine), []) if m.returncode == 0]
            if not measures:
                continue
            s = stats[engine] = _stats(measures)
            growth = ""
            if engine in previous:
                before, peak_before = previous[engine]
                growth = f"{s['peak'] / peak_before:.2f}x vs {_short(before)}"
            previous[engine] = (size, s["peak"])
            print(
                f"{size:>12,} {engine:<12} {len(measures):>4} {s['median']:>12.2f}"
                f" {s['min']:>7.2f} {s['max']:>7.2f} {s['cpu']:>7.1f} {s['peak']:>9,.0f}"
                f" {s['peak_max']:>8,.0f} {growth:>14}"
            )
        for engine in (*DUCKDB_ENGINES, BASELINE):
            if "cli" in stats and engine in stats:
                wall = stats["cli"]["median"] / stats[engine]["median"]
                cpu = stats["cli"]["cpu"] / stats[engine]["cpu"]
                peak = stats["cli"]["peak"] / stats[engine]["peak"]
                print(
                    f"{'':>12} CLI/{engine}: {wall:.2f}x wall, {cpu:.2f}x CPU (medians),"
                    f" {peak:.2f}x peak memory"
                )


def _short(size: int) -> str:
    """10000000 -> 10M, 1500000 -> 1.5M, 50000 -> 50k."""
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if size >= scale:
            return f"{size / scale:g}{unit}"
    return str(size)


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        default="1000000,10000000",
        help="earnings rows per month, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--plans-ratio",
        type=float,
        default=0.1,
        help="plans = earnings x this (default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per engine (default: 3)")
    parser.add_argument("--month", default="2026-04", help="earning month (default: 2026-04)")
    parser.add_argument("--seed", type=int, default=42, help="generator seed (default: 42)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where generated inputs are cached (default: TMPDIR/coop-payouts-bench)",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the inputs generated by this session (and the last outputs) for reruns",
    )
    parser.add_argument(
        "--prefect-api-url",
        help="PREFECT_API_URL for the CLI runs, e.g. http://127.0.0.1:4200/api "
        "(start `prefect server start` first)",
    )
    parser.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help="engines to run, comma-separated, of %(default)s (default: all)",
    )
    parser.add_argument("--skip-cli", action="store_true", help="leave the CLI out of --engines")
    parser.add_argument(
        "--baseline-cli",
        help="the coop-payouts executable of another version, run after each CLI run as "
        "engine cli-baseline (same inputs, same Prefect server)",
    )
    args = parser.parse_args(argv)
    try:
        sizes = [int(part) for part in args.sizes.split(",") if part.strip()]
        date.fromisoformat(args.month + "-01")
    except ValueError:
        parser.error("--sizes takes integers separated by commas; --month takes YYYY-MM")
    if not sizes or min(sizes) < 1 or args.runs < 1 or args.plans_ratio <= 0:
        parser.error("--sizes, --runs and --plans-ratio must be positive")
    wanted = {part.strip() for part in args.engines.split(",") if part.strip()}
    if not wanted or wanted - set(ENGINES):
        parser.error(f"--engines takes some of {','.join(ENGINES)}, got {args.engines!r}")
    if args.skip_cli:
        wanted.discard("cli")
    engines = [engine for engine in ENGINES if engine in wanted]
    if not engines:
        parser.error("no engine left to run (--skip-cli with --engines cli)")
    if args.baseline_cli:
        if not Path(args.baseline_cli).is_file():
            parser.error(f"--baseline-cli {args.baseline_cli}: no such file")
        engines.append(BASELINE)
    use_cli = "cli" in engines or BASELINE in engines

    cli = find_cli() if use_cli else None
    if use_cli and cli is None:
        print(
            "coop-payouts is not installed in this environment (pip install -e .); "
            "use --skip-cli to run the DuckDB cores only",
            file=sys.stderr,
        )
        return 2
    cli_env = dict(os.environ)
    if use_cli:
        if args.prefect_api_url:
            cli_env["PREFECT_API_URL"] = args.prefect_api_url
            check_prefect(args.prefect_api_url)
        elif os.environ.get("PREFECT_API_URL"):
            print(f"CLI runs use PREFECT_API_URL={os.environ['PREFECT_API_URL']}")
        else:
            print(
                "note: no --prefect-api-url: each CLI run starts a temporary Prefect server,\n"
                "      which costs about 7-13 s and is included in the CLI figures."
            )

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    print(f"{cores} cores, load average {load:.1f}, python {sys.version.split()[0]}")
    if load > cores / 2:
        print("warning: the machine is busy: wall times will be noisy (CPU times less so)")

    args.data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="coop-payouts-bench-runs-"))
    results: dict[tuple[int, str], list[Measure]] = {}
    generated: list[Path] = []
    ok = True
    try:
        for size in sizes:
            plans = max(1, round(size * args.plans_ratio))
            print(f"\n== {size:,} earnings, {plans:,} plans, month {args.month}")
            data, new = ensure_data(args.data_dir, size, plans, args.month, args.seed)
            if new:
                generated.append(data)
            last: dict[str, Path] = {}
            for run in range(1, args.runs + 1):
                for engine in engines:
                    if engine in DUCKDB_ENGINES:
                        out = work / f"{engine}-{size}-{run}.parquet"
                        cmd = [sys.executable, str(DUCKDB_CORE), str(data), args.month, str(out)]
                        cmd += ["--bare"] if engine == "duckdb-bare" else []
                        env = None
                    else:
                        out = Path(tempfile.mkdtemp(prefix=f"{engine}-", dir=work))
                        executable = args.baseline_cli if engine == BASELINE else cli
                        cmd = [str(executable), "run", "--month", args.month]
                        cmd += ["--input", str(data), "--output", str(out)]
                        env = cli_env
                    log = work / f"{engine}-{size}-{run}.log"
                    m = run_child(cmd, log, env)
                    results.setdefault((size, engine), []).append(m)
                    status = "ok" if m.returncode == 0 else f"FAILED (exit {m.returncode})"
                    print(
                        f"  run {run}/{args.runs} {engine:<12} {m.wall:8.2f} s wall"
                        f" {m.cpu:8.1f} s CPU {m.peak_mib:9,.0f} MiB peak  {status}"
                    )
                    if m.returncode != 0:
                        ok = False
                        print(_tail(log))
                        continue
                    # Keep only the last successful output of each engine.
                    if engine in last:
                        previous = last[engine]
                        if previous.is_dir():
                            shutil.rmtree(previous)
                        else:
                            previous.unlink(missing_ok=True)
                    last[engine] = out
            if "cli" in last and "duckdb" in last:
                ok = compare(last["cli"], last["duckdb"], args.month) and ok
            if "cli" in last and "duckdb-bare" in last:
                ok = check_bare(last["cli"], last["duckdb-bare"], args.month) and ok
        print_table(results)
    finally:
        if args.keep_data:
            print(f"\nkept: inputs in {args.data_dir}, last outputs and logs in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            for folder in generated:
                shutil.rmtree(folder, ignore_errors=True)
                folder.with_name(folder.name + ".complete").unlink(missing_ok=True)
            if generated:
                print("\nremoved the inputs generated by this session (--keep-data keeps them)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
