"""Faults around the output folder (docs/reruns.md, "Safety guarantees"): an interrupted publish
is settled by the next command from any working directory, a full or read-only disk leaves the
published month as it was, the options that would publish somewhere unusable are refused before
Prefect starts, and a killed run leaves no Prefect server behind."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows import orchestration, prefect_server
from flows.cli import app
from flows.errors import DiskFull, OutputUnusable
from flows.folder import OutputFolder, read_registry, run_lock, settle
from flows.month import RunOptions, progress
from flows.run import run_month
from tests.flows.corrections import correct_earning
from tests.flows.test_kill import published_bytes

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "data" / "sample"
CLI = str(Path(sys.executable).with_name("coop-payouts"))
MONTH = "2026-04"
PAGE = 4096


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    shutil.copytree(SAMPLE, folder)
    return folder


def month_run_ids(out: Path) -> set[str]:
    """The runs whose rows a reader of the month sees, over both published datasets."""
    return {
        run_id
        for dataset in ("payouts", "exceptions")
        for run_id in pl.read_parquet(out / dataset / f"earning_month={MONTH}")["run_id"]
    }


def assert_settled(out: Path, published_run: str) -> None:
    """The month is wholly the registry's run, and no trace of the publish is left."""
    folder = OutputFolder(out)
    assert read_registry(folder)[MONTH].run_id == published_run
    assert month_run_ids(out) == {published_run}
    assert not folder.journal.exists()
    assert not [p.name for p in folder.staging.iterdir() if p.name.startswith("backup-")]


def kill_while_publishing(stage: str, inputs: Path, cwd: Path, output: str) -> None:
    """A real rerun, started in `cwd` with a relative --output, killed at `stage`."""
    child = subprocess.Popen(
        [sys.executable, str(HERE / "kill_runner.py"), stage, str(inputs), output, "fix"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "PAUSED"
    child.send_signal(signal.SIGKILL)
    child.wait()


def settle_by_run(out: Path, cwd: Path) -> None:
    started_in = Path.cwd()
    os.chdir(cwd)
    try:
        with run_lock(OutputFolder(out)):
            pass
    finally:
        os.chdir(started_in)


def settle_by_history(out: Path, cwd: Path) -> None:
    done = subprocess.run(
        [CLI, "history", "--output", str(out)], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "interrupted publish of 2026-04" in done.stdout


def settle_by_check(out: Path, cwd: Path) -> None:
    """A dry run settles the folder before it reads the published months."""
    done = subprocess.run(
        [CLI, "check", "--month", MONTH, "--input", str(out.parent / "inputs"),
         "--output", str(out)],
        cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "nothing published" in done.stdout or "unchanged" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "settler",
    [settle_by_run, settle_by_history, settle_by_check],
    ids=["run", "history", "check"],
)
@pytest.mark.parametrize(
    ("stage", "kept"),
    [("publishing", "previous"), ("committed", "new")],
    ids=["killed-between-the-two-replacements", "killed-after-the-registry-named-it"],
)
def test_an_interrupted_publish_is_settled_from_another_working_directory(
    stage: str, kept: str, settler, inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=out))
    before = published_bytes(out)
    correct_earning(inputs)

    kill_while_publishing(stage, inputs, cwd=tmp_path, output="out")
    if stage == "publishing":
        assert len(month_run_ids(out)) == 2, "the kill left a mixed month to settle"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    settler(out, elsewhere)

    runs = sorted(p.name for p in (out / "runs").iterdir())
    if kept == "previous":
        assert published_bytes(out) == before
        assert runs == [first.run_id]
        assert_settled(out, first.run_id)
    else:
        (new,) = set(runs) - {first.run_id}
        assert_settled(out, new)
    assert settle(OutputFolder(out)) is None, "settling twice changes nothing"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a disk that can be filled, and remounted read-only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path, free_pages: int) -> Path:
    """Fill the disk, then give back `free_pages` pages; returns the filler file."""
    filler = disk / "filler"
    handle = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(handle, b"\xff" * PAGE)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    os.ftruncate(handle, os.fstat(handle).st_size - free_pages * PAGE)
    os.close(handle)
    return filler


@pytest.mark.parametrize(
    ("when", "free_pages"),
    [("before-the-run", 0), ("at-publish", 0), ("at-publish", 1)],
    ids=["staging-fails", "journal-write-fails", "registry-write-fails"],
)
def test_a_full_disk_leaves_the_published_month_as_it_was(
    when: str, free_pages: int, small_disk: Path, inputs: Path
) -> None:
    out = small_disk / "out"
    first = run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=out))
    before = published_bytes(out)
    correct_earning(inputs)

    class FillAtPublish(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if when == "at-publish" and record.getMessage() == "publishing":
                fill(small_disk, free_pages)

    filler = fill(small_disk, free_pages) if when == "before-the-run" else None
    rerun = RunOptions(month=MONTH, input_dir=inputs, output_dir=out, reason="fix")
    handler = FillAtPublish()
    progress.addHandler(handler)
    try:
        with pytest.raises(DiskFull) as raised:
            run_month(rerun)
    finally:
        progress.removeHandler(handler)

    sentence = str(raised.value)
    assert f"--output {out}" in sentence and "disk is full" in sentence
    assert published_bytes(out) == before
    assert sorted(p.name for p in (out / "runs").iterdir()) == [first.run_id]
    assert_settled(out, first.run_id)
    assert not list(OutputFolder(out).staging.iterdir()), "nothing staged is left behind"
    assert not list(out.rglob("*.tmp")), "no temporary file is left behind"

    (filler or small_disk / "filler").unlink()
    assert run_month(rerun).status == "published"


@pytest.fixture
def no_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's checks must refuse before Prefect is reached."""

    def reached(*args: object, **kwargs: object) -> None:
        raise AssertionError("Prefect was reached")

    monkeypatch.setattr(prefect_server, "start_temporary_server", reached)
    monkeypatch.setattr(orchestration, "monthly_payout", reached)


def one_sentence(stderr: str) -> str:
    (line,) = stderr.strip().splitlines()
    assert line.startswith("coop-payouts: ")
    assert "unexpected" not in line and "Traceback" not in line
    return line


def test_a_read_only_output_folder_is_named_in_one_sentence(
    small_disk: Path, inputs: Path, no_prefect: None
) -> None:
    out = small_disk / "out"
    first = run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=out))
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    runner = CliRunner()

    for command in (["run", "--month", MONTH], ["backfill", "--from", MONTH, "--to", MONTH]):
        result = runner.invoke(app, [*command, "--input", str(inputs), "--output", str(out)])
        assert result.exit_code == 2, result.output
        line = one_sentence(result.stderr)
        assert f"--output {out}" in line and "read-only" in line
    with pytest.raises(OutputUnusable, match="read-only"):
        run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=out, reason="fix"))

    history = runner.invoke(app, ["history", "--output", str(out)])
    assert history.exit_code == 0, history.output
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in history.stdout.splitlines()
        if line.startswith(f"| {MONTH}")
    ]
    assert [(row[1], row[2]) for row in rows] == [(first.run_id, "yes")]
    assert read_registry(OutputFolder(out))[MONTH].run_id == first.run_id


@pytest.mark.parametrize("command", ["run", "check"])
def test_a_full_disk_is_named_through_the_cli(
    command: str, small_disk: Path, inputs: Path, request: pytest.FixtureRequest
) -> None:
    if command == "run":
        request.getfixturevalue("prefect_server")
    out = small_disk / "out"
    run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=out))
    before = published_bytes(out)
    correct_earning(inputs)
    fill(small_disk, 0)
    args = [command, "--month", MONTH, "--input", str(inputs), "--output", str(out)]
    result = CliRunner().invoke(app, [*args, "--reason", "fix"] if command == "run" else args)
    assert result.exit_code == 1, result.output
    line = one_sentence(result.stderr)
    assert f"--output {out}" in line and "the disk is full" in line
    assert published_bytes(out) == before


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["run", "--output", "/"], "--output"),
        (["run", "--output", "{file}"], "--output"),
        (["run", "--output", "{file}/out"], "--output"),
        (["backfill", "--from", MONTH, "--to", MONTH, "--output", "/"], "--output"),
        (["backfill", "--from", MONTH, "--to", MONTH, "--output", "{file}"], "--output"),
        (["history", "--output", "/"], "--output"),
        (["history", "--output", "{file}"], "--output"),
        (["run", "--reason", ""], "--reason"),
        (["run", "--reason", " \t "], "--reason"),
        (["backfill", "--from", MONTH, "--to", MONTH, "--reason", "  "], "--reason"),
    ],
    ids=[
        "run-output-root",
        "run-output-file",
        "run-output-under-a-file",
        "backfill-output-root",
        "backfill-output-file",
        "history-output-root",
        "history-output-file",
        "run-empty-reason",
        "run-blank-reason",
        "backfill-blank-reason",
    ],
)
def test_unusable_options_are_usage_errors_before_prefect(
    args: list[str], option: str, inputs: Path, tmp_path: Path, no_prefect: None
) -> None:
    file = tmp_path / "payouts.txt"
    file.write_text("not a folder\n")
    args = [arg.replace("{file}", str(file)) for arg in args]
    if args[0] != "history":
        args += ["--input", str(inputs)]
        if "--output" not in args:
            args += ["--output", str(tmp_path / "out")]
    if args[0] == "run":
        args += ["--month", MONTH]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert option in one_sentence(result.stderr)
    assert file.read_text() == "not a folder\n"
    assert not (tmp_path / "out").exists()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead child its new parent has not reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _is_server(pid: int) -> bool:
    try:
        return b"uvicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's parent-death signal")
def test_a_killed_run_leaves_no_prefect_server_behind(inputs: Path, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    cli = subprocess.Popen(
        [CLI, "run", "--month", MONTH, "--input", str(inputs), "--output", str(tmp_path / "out")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = None
    try:
        deadline = time.monotonic() + 60
        while server is None and time.monotonic() < deadline and cli.poll() is None:
            server = next((pid for pid in _children(cli.pid) if _is_server(pid)), None)
            time.sleep(0.1)
        assert server is not None, "the run started no temporary Prefect server"
        time.sleep(1)  # let it get going: imports, then the database
        cli.send_signal(signal.SIGKILL)
        cli.wait()
        deadline = time.monotonic() + 15
        while _running(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(server), "the temporary Prefect server outlived the killed run"
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        if server is not None and _running(server):
            os.kill(server, signal.SIGKILL)
