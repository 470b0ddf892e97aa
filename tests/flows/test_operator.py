"""What an operator meets without Prefect (docs/operations.md): `check`, the files of a run
refused under --strict, `--version`, output into a closed pipe, and text from options shown
plainly."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.cli import ALLOCATOR_SETTINGS, POLARS_ALLOCATOR_DEFAULTS, app
from flows.errors import InputRejected
from flows.month import RunOptions, RunOutcome
from flows.orchestration import summary_markdown
from flows.records import Manifest
from flows.run import run_month
from tests.flows.corrections import correct_earning
from tests.flows.test_kill import published_bytes

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
CLI = str(Path(sys.executable).with_name("coop-payouts"))
MONTH = "2026-04"
MARKUP = "[/bold] x"
ESCAPE = "\x1b[31mred"


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    shutil.copytree(SAMPLE, folder)
    return folder


pytestmark = pytest.mark.usefixtures("no_prefect")


def everything(folder: Path) -> list[str]:
    """Every path under `folder`, hidden bookkeeping included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --- refusals made before Prefect starts ----------------------------------------------------


def test_a_changed_rerun_without_reason_is_refused_before_prefect(
    inputs: Path, tmp_path: Path
) -> None:
    """A bug: told after 8-9 s, once Prefect had started."""
    out = tmp_path / "out"
    first = run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=out))
    correct_earning(inputs)
    for command in (["run", "--month", MONTH], ["backfill", "--from", "2026-03", "--to", MONTH]):
        result = CliRunner().invoke(app, [*command, "--input", str(inputs), "--output", str(out)])
        assert result.exit_code == 4, result.output
        assert f"--reason: {MONTH} was published by run {first.run_id}" in result.stderr


def test_a_missing_input_file_is_refused_before_prefect(inputs: Path, tmp_path: Path) -> None:
    (inputs / "plans.csv").unlink()
    result = CliRunner().invoke(
        app, ["run", "--month", MONTH, "--input", str(inputs), "--output", str(tmp_path / "o")]
    )
    assert result.exit_code == 3, result.output
    assert result.stderr == (
        f"coop-payouts: {inputs}: the required file plans.csv (or .parquet) is missing\n"
    )


@pytest.mark.parametrize(
    ("missing", "sentence"),
    [
        pytest.param(
            ["payment_profiles.csv"],
            "the required file payment_profiles.csv (or .parquet) is missing",
            id="payment_profiles-is-required",
        ),
        pytest.param(
            ["plans.csv", "payment_profiles.csv"],
            "the required files plans.csv and payment_profiles.csv (each .csv or .parquet) are "
            "missing",
            id="two-missing-files-named-together",
        ),
        pytest.param(
            ["programs.csv", "earnings.csv", "payment_profiles.csv"],
            "the required files programs.csv, earnings.csv and payment_profiles.csv (each .csv "
            "or .parquet) are missing",
            id="three-missing-files-named-together",
        ),
    ],
)
@pytest.mark.parametrize("command", ["run", "check"])
def test_every_missing_input_file_is_named(
    command: str, missing: list[str], sentence: str, inputs: Path, tmp_path: Path
) -> None:
    """Without payment profiles every account would be paid as enrolled, so the file is
    required like the others (docs/inputs.md)."""
    for name in missing:
        (inputs / name).unlink()
    out = tmp_path / "o"
    result = CliRunner().invoke(
        app, [command, "--month", MONTH, "--input", str(inputs), "--output", str(out)]
    )
    assert result.exit_code == 3, result.output
    assert result.stderr.strip() == f"coop-payouts: {inputs}: {sentence}"
    assert everything(out) == []


# --- check: a dry run -----------------------------------------------------------------------


def test_check_of_a_first_month_prints_the_summary_and_creates_nothing(
    inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["check", "--month", MONTH, "--input", str(inputs), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "checked, nothing published: a run would publish 38 payout row(s)" in result.stdout
    assert "exceptions by code" in result.stdout and "DUPLICATE_KEY" in result.stdout
    assert "reconciliation holds" in result.stdout
    assert not out.exists(), "a dry run creates no output folder"


@pytest.mark.parametrize(
    ("change", "phrases"),
    [
        ("none", ["unchanged: run"]),
        ("corrected-earning", ["changed against run", "a run needs --reason TEXT"]),
    ],
    ids=["unchanged-rerun", "changed-rerun-without-reason"],
)
def test_check_after_a_published_month_changes_nothing(
    change: str, phrases: list[str], inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=out))
    if change == "corrected-earning":
        correct_earning(inputs)
    before, listed = published_bytes(out), everything(out)
    result = CliRunner().invoke(
        app, ["check", "--month", MONTH, "--input", str(inputs), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    for phrase in phrases:
        assert phrase in result.stdout
    assert "exceptions by code" in result.stdout
    assert published_bytes(out) == before
    assert everything(out) == listed, "no run folder, nothing staged, nothing left behind"
    assert [p.name for p in (out / "runs").iterdir()] == [first.run_id]


@pytest.mark.parametrize(
    ("month", "extra", "remove", "code", "phrase"),
    [
        (MONTH, [], "plan_limits.csv", 3, "plan_limits.csv"),
        ("2026-06", [], None, 3, "earnings"),
        ("2026-06", ["--allow-empty"], None, 0, "checked, nothing published"),
        ("2026-13", [], None, 2, "--month"),
    ],
    ids=["missing-file-exit-3", "empty-month-exit-3", "empty-month-allowed", "bad-month-exit-2"],
)
def test_check_exit_codes(
    month: str,
    extra: list[str],
    remove: str | None,
    code: int,
    phrase: str,
    inputs: Path,
    tmp_path: Path,
) -> None:
    if remove:
        (inputs / remove).unlink()
    out = tmp_path / "out"
    args = ["check", "--month", month, "--input", str(inputs), "--output", str(out), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    assert phrase in (result.stdout if code == 0 else result.stderr)
    assert not out.exists()


def test_check_is_a_plain_function_call(inputs: Path, tmp_path: Path) -> None:
    outcome = run_month(
        RunOptions(month=MONTH, input_dir=inputs, output_dir=tmp_path / "out", dry_run=True)
    )
    assert outcome.status == "checked" and outcome.run_dir is None
    assert outcome.manifest is not None and outcome.manifest.exception_count == 42


# --- --strict: the exceptions are kept where a person can read them ---------------------------


def test_strict_keeps_the_exceptions_outside_the_published_datasets(
    inputs: Path, tmp_path: Path
) -> None:
    earnings = inputs / "earnings.csv"
    earnings.write_text(
        earnings.read_text()
        + '"=HYPERLINK(""http://x"")",4412907,Security Co-op,Marketing,2026-04,1.00,USD\n'
    )
    out = tmp_path / "out"
    with pytest.raises(InputRejected) as raised:
        run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=out, strict=True))
    sentence = str(raised.value)
    (kept,) = (out / "rejected").iterdir()
    csv_file = kept / "exceptions.csv"
    assert f"each row, column and code is in {csv_file}" in sentence
    assert "--strict: 43 row exception(s)" in sentence and "nothing was published" in sentence
    # Each count names its file (a bug: `INVALID_VALUE 1, ..., INVALID_VALUE 5`, no file).
    assert "by file: activities 2, campaigns 1, earnings 24, payment_profiles 4," in sentence
    frame = pl.read_parquet(kept / "exceptions.parquet")
    assert frame.height == 43 and set(frame["run_id"]) == {kept.name}
    with csv_file.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 43
    keys = {row["record_key"] for row in rows}
    assert '\'=HYPERLINK("http://x")' in keys, "a formula is shown as text in a spreadsheet"
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())
    assert not (out / "payouts").exists()


# --- --version and help ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--version"], f"coop-payouts {version('coop-payouts')}"),
        (["history", "--help"], "default: all months"),
        (["check", "--help"], "Prefect is not started"),
        (["serve", "--help"], "--approval-timeout-hours"),
    ],
    ids=["version", "history-default-month", "check-without-prefect", "serve-options"],
)
def test_version_and_help(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert expected in " ".join(result.stdout.split())


@pytest.mark.parametrize("command", ["run", "check", "backfill", "history", "release", "serve"])
def test_help_shows_flags_without_a_placeholder(command: str) -> None:
    """A bug: flags showed as `--strict <bool>`, and check's --allow-empty said "Publish"."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    if command == "check":
        assert "Publish" not in result.stdout


# --- polars' allocator: freed pages returned soon (docs/performance.md) --------------------

# What polars was given, in a new process that imports the command's module first.
ALLOCATOR_PROBE = "import os, flows.cli, polars; print(os.environ['_RJEM_MALLOC_CONF'])"


@pytest.mark.parametrize(
    ("given", "settings"),
    [
        (None, ALLOCATOR_SETTINGS),
        (POLARS_ALLOCATOR_DEFAULTS, ALLOCATOR_SETTINGS),
        ("narenas:1", "narenas:1"),
    ],
    ids=["default", "polars-defaults-from-a-parent-process", "the-operators-own"],
)
def test_the_command_sets_the_allocator_before_polars_reads_it(
    given: str | None, settings: str
) -> None:
    """polars reads `_RJEM_MALLOC_CONF` as it is first imported, after its own settings: the
    command's module sets it first, unless the operator has (a parent process that imported
    polars passes on polars' own settings: those are not the operator's)."""
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    if given is not None:
        env["_RJEM_MALLOC_CONF"] = given
    probe = subprocess.run(
        [sys.executable, "-c", ALLOCATOR_PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().endswith("," + settings)


def test_polars_own_allocator_settings_are_the_ones_the_command_recognises() -> None:
    """If a new polars changes its own settings, the command would take them for an
    operator's and keep them: this fails first."""
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    probe = subprocess.run(
        [sys.executable, "-c", "import os, polars; print(os.environ['_RJEM_MALLOC_CONF'])"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.stdout.strip() == POLARS_ALLOCATOR_DEFAULTS, probe.stderr


# --- a reader that goes away: `| head -1` --------------------------------------------------


def closed_pipe_run(args: list[str]) -> subprocess.CompletedProcess[str]:
    """The console script with stdout into a pipe whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [CLI, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "command",
    [["history"], ["history", "--json"], ["check", "--month", MONTH]],
    ids=["history", "history-json", "check"],
)
def test_a_closed_pipe_is_not_an_error(command: list[str], inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=out))
    args = [*command, "--output", str(out)]
    if command[0] == "check":
        args += ["--input", str(inputs)]
    done = closed_pipe_run(args)
    assert done.returncode == 0
    assert done.stderr == ""


# --- text from options is shown plainly ------------------------------------------------------


@pytest.mark.parametrize("reason", [MARKUP, ESCAPE], ids=["rich-markup", "terminal-escape"])
def test_a_reason_is_shown_plainly(reason: str, inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=out))
    correct_earning(inputs)
    rerun = run_month(RunOptions(month=MONTH, input_dir=inputs, output_dir=out, reason=reason))
    shown = reason.replace("\x1b", "\\x1b")

    history = CliRunner().invoke(app, ["history", "--output", str(out)], env={"COLUMNS": "300"})
    assert history.exit_code == 0, history.output
    assert shown in history.stdout and "\x1b" not in history.stdout

    markdown = summary_markdown(rerun)
    assert "\x1b" not in markdown
    assert reason.replace("[", "\\[").replace("]", "\\]").replace("\x1b", "\\x1b") in markdown


def test_markdown_cells_and_sentences_escape_what_markdown_reads(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_month(RunOptions(month=MONTH, input_dir=SAMPLE, output_dir=out))
    (run_dir,) = (out / "runs").iterdir()
    manifest = Manifest.read(run_dir / "manifest.json")
    manifest.supersedes, manifest.reason = "an-earlier-run", "a | b *c* <b>d</b>"
    markdown = summary_markdown(RunOutcome("published", MONTH, "r", run_dir, manifest, "done"))
    assert "reason: a \\| b \\*c\\* \\<b\\>d\\</b\\>" in markdown


# --- the command's exit: Python's last collection skips what the command holds --------------

EXIT_PROBE = """
import atexit, gc, sys
atexit.register(lambda: print(gc.get_freeze_count()))
sys.argv = ["coop-payouts", "--version"]
from flows.command import main
main()
"""


def test_the_command_freezes_its_objects_before_python_exits() -> None:
    """Python collects every object once more as it exits (0.6-0.7 s for the command's modules,
    docs/performance.md): the command freezes them first, whichever way it ends (`--version`
    ends by SystemExit)."""
    probe = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE], capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stderr
    assert int(probe.stdout.splitlines()[-1]) > 10_000
