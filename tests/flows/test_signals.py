"""Ctrl-C or SIGTERM stops a command within seconds: exit 130 or 143 and one sentence that says
truthfully whether the month was published (the batch released), no traceback, no process left
behind, with a temporary Prefect server or a running one (docs/operations.md, "Stopping a
command").

A real command (signal_runner.py) stops at a chosen moment and is signalled there: a Ctrl-C goes
to its whole process group, as a terminal sends it; a SIGTERM to the process alone. The next
command (`history`) settles the output folder; the month must then be published exactly when the
sentence said so.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.folder import OutputFolder, read_registry
from flows.interrupts import GRACE_SECONDS
from flows.month import RunOptions
from flows.run import run_month
from tests.flows.test_publish_safety import _children, _running

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "signal_runner.py"
SAMPLE = HERE.parents[1] / "data" / "sample"
CLI = str(Path(sys.executable).with_name("coop-payouts"))
MONTH = "2026-04"
# The orderly way out takes 1-4 s; a command stuck where a signal cannot unwind it is ended when
# the grace is over.
BOUND_SECONDS = GRACE_SECONDS + 5


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        children = _children(todo.pop())
        found += children
        todo += children
    return found


def interrupt(
    point: str, signum: int, args: list[str], env: dict[str, str], cwd: Path, to: str = ""
) -> tuple[int, str, float, list[int]]:
    """Start the command, signal it at `point`; its exit code, what it printed on stderr after
    the pause, how long it took to stop and the processes it had started. A SIGINT goes to the
    process group (a terminal's Ctrl-C), a SIGTERM to the process, or with `to="all"` to every
    process the command started too (as a service manager stops a service)."""
    child = subprocess.Popen(
        [sys.executable, str(RUNNER), point, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,  # a process group of its own, as a terminal gives a command
    )
    assert child.stderr is not None
    try:
        before = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if not select.select([child.stderr], [], [], 1)[0]:
                continue
            line = child.stderr.readline()
            if not line or line.strip() == "PAUSED":
                break
            before.append(line)
        assert line.strip() == "PAUSED", f"the command never reached {point}: {before}"
        started = descendants(child.pid)
        sent = time.monotonic()
        if signum == signal.SIGINT:
            os.killpg(child.pid, signal.SIGINT)  # Ctrl-C: the terminal's whole foreground group
        else:
            for pid in [child.pid, *(started if to == "all" else [])]:
                os.kill(pid, signum)
        child.wait(timeout=60)
        took = time.monotonic() - sent
        return child.returncode, child.stderr.read(), took, started
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def settled_publishes(out: Path, cwd: Path, env: dict[str, str]) -> dict:
    """The registry once the next command (history) has settled the folder."""
    done = subprocess.run(
        [CLI, "history", "--output", str(out)],
        capture_output=True, text=True, timeout=120, env=env, cwd=cwd,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return read_registry(OutputFolder(out))


def assert_stopped(
    code: int, stderr: str, took: float, started: list[int], signum: int, truth: str
) -> None:
    assert code == 128 + signum, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"one sentence on stderr, not: {stderr!r}"
    name = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else "SIGTERM"
    assert lines[0].startswith(f"coop-payouts: interrupted by {name}"), lines[0]
    assert truth in lines[0], lines[0]
    assert took < BOUND_SECONDS, f"took {took:.1f} s to stop"
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in started if _running(pid)], "a process outlived the command"


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    shutil.copytree(SAMPLE, folder)
    return folder


def temporary_server_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    return env


# (where, whether the month is published by then)
POINTS = [
    ("computing", False),
    ("publishing", False),  # a publish is not interrupted between its renames: ended at the grace
    ("committed", True),
    ("artifacts", True),
]
SIGNALS = [signal.SIGINT, signal.SIGTERM]


def check_run(
    point: str,
    published: bool,
    signum: int,
    inputs: Path,
    tmp_path: Path,
    env: dict[str, str],
    to: str = "",
) -> float:
    out = tmp_path / "out"
    args = ["run", "--month", MONTH, "--input", str(inputs), "--output", str(out)]
    code, stderr, took, started = interrupt(point, signum, args, env, tmp_path, to)
    assert_stopped(
        code, stderr, took, started, signum,
        f"after {MONTH} (run " if published else "nothing was published",
    )  # fmt: skip
    registry = settled_publishes(out, tmp_path, env)
    assert (MONTH in registry) == published
    if published:
        assert registry[MONTH].run_id in stderr
    assert [p.name for p in (out / "runs").iterdir()] == (
        [registry[MONTH].run_id] if published else []
    )
    return took


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize(("point", "published"), POINTS, ids=[p for p, _ in POINTS])
def test_a_run_against_a_running_server_stops_and_tells_the_truth(
    point: str, published: bool, signum: int, inputs: Path, tmp_path: Path, prefect_server: str
) -> None:
    env = dict(os.environ, PREFECT_API_URL=prefect_server)
    check_run(point, published, signum, inputs, tmp_path, env)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's parent-death signal")
@pytest.mark.parametrize(
    ("point", "published", "signum", "to"),
    [
        *((p, done, signal.SIGINT, "") for p, done in POINTS),
        ("artifacts", True, signal.SIGTERM, ""),
        # The server is gone before the run can report its end: the grace ends the wait.
        ("computing", False, signal.SIGTERM, "all"),
        ("artifacts", True, signal.SIGTERM, "all"),
    ],
    ids=[
        *(f"{p}-SIGINT" for p, _ in POINTS),
        "artifacts-SIGTERM",
        "computing-SIGTERM-server-too",
        "artifacts-SIGTERM-server-too",
    ],
)
def test_a_run_with_a_temporary_server_stops_and_leaves_no_server(
    point: str, published: bool, signum: int, to: str, inputs: Path, tmp_path: Path
) -> None:
    env = temporary_server_env(tmp_path)
    check_run(point, published, signum, inputs, tmp_path, env, to)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize(("point", "released"), [("staged", False), ("released", True)])
def test_an_interrupted_release_says_whether_the_batch_was_released(
    point: str, released: bool, signum: int, inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    january = run_month(RunOptions(month="2026-02", input_dir=inputs, output_dir=out))
    args = ["release", "--month", "2026-02", "--run", january.run_id, "--approved-by", "Megan",
            "--output", str(out)]  # fmt: skip
    env = temporary_server_env(tmp_path)
    code, stderr, took, started = interrupt(point, signum, args, env, tmp_path)
    truth = f"after the batch of 2026-02 (run {january.run_id}) was released"
    assert_stopped(
        code, stderr, took, started, signum, truth if released else "nothing was released"
    )
    settled_publishes(out, tmp_path, env)
    pay_date = january.manifest.payment_date
    assert (out / "releases" / pay_date / "payments.csv").is_file() == released


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_an_interrupted_check_publishes_nothing(signum: int, inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["check", "--month", MONTH, "--input", str(inputs), "--output", str(out)]
    env = temporary_server_env(tmp_path)
    code, stderr, took, started = interrupt("computing", signum, args, env, tmp_path)
    assert_stopped(code, stderr, took, started, signum, "nothing was published")


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_an_interrupted_history_publishes_nothing(
    signum: int, inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=out))
    env = temporary_server_env(tmp_path)
    args = ["history", "--output", str(out)]
    code, stderr, took, started = interrupt("listing", signum, args, env, tmp_path)
    assert_stopped(code, stderr, took, started, signum, "nothing was published")


def test_an_interrupted_backfill_names_the_months_it_published(
    inputs: Path, tmp_path: Path, prefect_server: str
) -> None:
    out = tmp_path / "out"
    args = ["backfill", "--from", "2026-02", "--to", MONTH, "--input", str(inputs),
            "--output", str(out)]  # fmt: skip
    env = dict(os.environ, PREFECT_API_URL=prefect_server)
    code, stderr, took, started = interrupt("artifacts", signal.SIGINT, args, env, tmp_path)
    assert_stopped(code, stderr, took, started, signal.SIGINT, "; nothing else was published")
    assert sorted(settled_publishes(out, tmp_path, env)) == ["2026-02"]


def _loads_polars(pid: int) -> bool:
    """Whether process `pid` has begun loading polars: the command's modules are loading."""
    return "polars" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_command_starts_is_one_sentence(tmp_path: Path, signum: int) -> None:
    """The command's modules take most of a second to load, polars among the first: a signal
    then ends the command with one sentence, never a traceback."""
    child = subprocess.Popen(
        [CLI, "history", "--output", str(tmp_path / "out")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not _loads_polars(child.pid) and time.monotonic() < deadline:
        time.sleep(0.001)
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=BOUND_SECONDS)
    name = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else "SIGTERM"
    assert (child.returncode, stderr) == (
        128 + signum,
        f"coop-payouts: interrupted by {name} while starting: nothing was done\n",
    )
