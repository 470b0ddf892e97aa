"""Months that have not ended are not run (docs/operations.md, "Months that have not ended"):
`run`, `check`, `backfill` and `release` refuse such a month with exit 2, before Prefect starts
and before anything is read or written, and so does `run_month`, the entry point of the Prefect
flow. The tests set the clock (`flows.clock.now`); the command line reads the real one."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows import clock
from flows.cli import app
from flows.errors import UsageError
from flows.month import RunOptions
from flows.options import check_month_ended
from flows.run import run_month

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
CLI = str(Path(sys.executable).with_name("coop-payouts"))
NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
FAR_FUTURE, CURRENT = "2031-01", "2026-12"


pytestmark = pytest.mark.usefixtures("no_prefect")


def set_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    monkeypatch.setattr(clock, "now", lambda: now)


def command(name: str, month: str, out: Path) -> tuple[list[str], str]:
    """The command line of `name` for `month`, and the option the refusal names."""
    if name == "release":
        args = ["release", "--month", month, "--run", "x", "--approved-by", "Megan Bowen"]
        return [*args, "--output", str(out)], f"--month {month}"
    folders = ["--input", str(SAMPLE), "--output", str(out)]
    if name == "backfill":
        return ["backfill", "--from", "2026-04", "--to", month, *folders], f"--to {month}"
    return [name, "--month", month, *folders], f"--month {month}"


@pytest.mark.parametrize("month", [FAR_FUTURE, CURRENT], ids=["far-future", "current-month"])
@pytest.mark.parametrize("name", ["run", "check", "backfill", "release"])
def test_a_month_not_ended_is_refused(
    name: str, month: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_clock(monkeypatch, NOW)
    out = tmp_path / "out"
    args, option = command(name, month, out)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"{option}: the month has not ended" in result.stderr
    assert "can be run from" in result.stderr
    assert not out.exists()


def test_backfill_refuses_before_running_any_month(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--from 2026-04 has ended, but nothing runs: --to 2026-12 has not."""
    set_clock(monkeypatch, NOW)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["backfill", "--from", "2026-04", "--to", CURRENT]
        + ["--input", str(SAMPLE), "--output", str(out)],
    )
    assert result.exit_code == 2, result.output
    assert not out.exists()


def test_run_month_refuses_a_month_not_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Prefect flow and the deployment reach the month through run_month."""
    set_clock(monkeypatch, NOW)
    options = RunOptions(month=CURRENT, input_dir=SAMPLE, output_dir=tmp_path / "out")
    with pytest.raises(UsageError, match="--month 2026-12: the month has not ended"):
        run_month(options)
    assert not (tmp_path / "out").exists()


def test_the_default_month_is_the_previous_one_of_the_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --month: the month before the clock's, which has always ended."""
    set_clock(monkeypatch, datetime(2026, 5, 1, tzinfo=UTC))
    result = CliRunner().invoke(
        app, ["check", "--input", str(SAMPLE), "--output", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "2026-04 checked, nothing published: a run would publish 38 payout row(s) and 42 "
        "exception(s)"
    )


def test_the_command_reads_the_real_clock(tmp_path: Path) -> None:
    """No clock to set from outside: the command refuses a month after today's."""
    month = f"{datetime.now(UTC).year + 5}-01"
    done = subprocess.run(
        [CLI, "run", "--month", month, "--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"--month {month}: the month has not ended" in done.stderr


BEFORE_END = datetime(2026, 4, 30, 23, 59, 59, tzinfo=UTC)
AT_END = datetime(2026, 5, 1, tzinfo=UTC)
PARIS = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("month", "now", "ended"),
    [
        pytest.param("2026-04", BEFORE_END, False, id="last-second-of-the-month"),
        pytest.param("2026-04", AT_END, True, id="first-second-of-the-next-month"),
        pytest.param(
            "2026-04",
            datetime(2026, 5, 1, 1, 0, tzinfo=PARIS),
            False,
            id="already-May-in-Paris-still-April-in-UTC",
        ),
        pytest.param("2026-03", BEFORE_END, True, id="an-earlier-month"),
        pytest.param("2026-05", AT_END, False, id="the-month-just-begun"),
        pytest.param("2026-12", datetime(2027, 1, 1, tzinfo=UTC), True, id="December-into-January"),
        pytest.param("2031-01", NOW, False, id="far-future"),
    ],
)
def test_check_month_ended(month: str, now: datetime, ended: bool) -> None:
    if ended:
        assert check_month_ended(month, now) == month
    else:
        with pytest.raises(UsageError) as refused:
            check_month_ended(month, now)
        end = (datetime.fromisoformat(f"{month}-01") + timedelta(days=31)).replace(day=1)
        last_day = (end - timedelta(days=1)).date()
        assert str(refused.value) == (
            f"--month {month}: the month has not ended; it ends on {last_day} (UTC) and can be "
            f"run from {end.date()}"
        )
