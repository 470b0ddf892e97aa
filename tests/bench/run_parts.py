"""Where the time of whole `coop-payouts run` processes goes (docs/performance.md), as Prefect
recorded them: the time before the flow run starts (the interpreter, the imports, the flow run's
creation), each stage's task run, the rest (between the task runs, the flow run's end with the
join of its heartbeat thread, the process's exit), and the whole.

    .venv/bin/prefect server start &
    python tests/bench/run_parts.py DIR --month 2026-04 --runs 3 \\
        --prefect-api-url http://127.0.0.1:4200/api

Each run publishes the month into a fresh temporary output folder. `stage_times.py` times the
stages without Prefect; this times them inside the command as the scheduled run makes them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from run_benchmark import find_cli


@dataclass(frozen=True)
class Parts:
    """One run's parts, in seconds: before the flow run, each stage (in order), the rest."""

    before: float
    stages: list[tuple[str, float]]
    after: float
    whole: float


def run_once(cli: str, folder: Path, month: str, env: dict[str, str]) -> Parts:
    """Run the command once into a fresh output folder; its parts from the server's records."""
    with tempfile.TemporaryDirectory(prefix="coop-payouts-parts-") as output:
        started = time.time()
        done = subprocess.run(
            [cli, "run", "--month", month, "--input", str(folder), "--output", output],
            env=env,
            capture_output=True,
            text=True,
        )
        ended = time.time()
        if done.returncode != 0:
            raise SystemExit(f"the run exited {done.returncode}: {done.stderr.strip()}")
        return asyncio.run(_parts(env["PREFECT_API_URL"], month, output, started, ended))


async def _parts(api: str, month: str, output: str, started: float, ended: float) -> Parts:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterName,
        FlowRunFilterStartTime,
    )
    from prefect.client.schemas.sorting import TaskRunSort

    async with PrefectClient(api) as client:
        candidates = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=[f"coop-payouts-{month}"]),
                start_time=FlowRunFilterStartTime(after_=datetime.fromtimestamp(started, UTC)),
            )
        )
        (run,) = [
            r
            for r in candidates
            if Path(r.parameters.get("output_dir", "")).resolve() == Path(output).resolve()
        ]
        assert run.start_time is not None and run.end_time is not None
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
        )
    # A task run's name is its task's name and a suffix: "route-3f2".
    stages = [(task.name.rsplit("-", 1)[0], task.total_run_time.total_seconds()) for task in tasks]
    before = run.start_time.timestamp() - started
    whole = ended - started
    return Parts(before, stages, whole - before - sum(s for _, s in stages), whole)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="the input folder of the month")
    parser.add_argument("--month", default="2026-04", help="the month (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=1, help="runs, one after the other")
    parser.add_argument(
        "--cli", default=find_cli(), help="the command (default: this Python's, else PATH's)"
    )
    parser.add_argument(
        "--prefect-api-url", help="the Prefect server (default: PREFECT_API_URL of the shell)"
    )
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.prefect_api_url:
        env["PREFECT_API_URL"] = args.prefect_api_url
    if args.cli is None:
        parser.error("no coop-payouts command found: install the project, or give --cli")
    if not env.get("PREFECT_API_URL"):
        parser.error("a running Prefect server is needed: --prefect-api-url or PREFECT_API_URL")
    runs = [run_once(args.cli, args.input, args.month, env) for _ in range(args.runs)]
    rows = [("before the flow run", [r.before for r in runs])]
    for number, (name, _) in enumerate(runs[0].stages):
        rows.append((f"stage {name}", [r.stages[number][1] for r in runs]))
    rows += [
        ("between and after stages", [r.after for r in runs]),
        ("whole", [r.whole for r in runs]),
    ]
    for label, seconds in rows:
        print(f"{label:<26} " + " ".join(f"{s:7.2f} s" for s in seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
