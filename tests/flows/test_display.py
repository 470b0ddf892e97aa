"""Tables on the command line (flows/display.py): every amount, status and name whole at 80 and
200 columns, one line per row when piped (a bug: at 80 columns `1538000.…` and `BELOW_MI…`)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from flows import cli
from flows.display import show
from flows.manifest import Table, shown_amount
from flows.month import RunOptions
from flows.run import run_month

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

BATCH = Table(
    "payment batch of 2026-04-15",
    ("currency", "status", "accounts", "owed", "order", "forfeit", "carried"),
    [
        ("JPY", "BELOW_MINIMUM", "1", "29000", "0", "0", "29000"),
        ("JPY", "PAY", "2", "1538000", "1538000", "0", "0"),
        ("USD", "HELD_PROFILE", "1", "123456789012345.67", "0.00", "0.00", "123456789012345.67"),
    ],
    numeric=("accounts", "owed", "order", "forfeit", "carried"),
)
ESCAPES = re.compile(r"\x1b\[[0-9;]*m")


def shown(table: Table, width: int, terminal: bool) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=terminal, color_system=None)
    show(console, table)
    return ESCAPES.sub("", console.file.getvalue())


@pytest.mark.parametrize("width", [80, 200], ids=["80-columns", "200-columns"])
def test_every_value_is_whole_on_a_terminal(width: int) -> None:
    text = shown(BATCH, width, terminal=True)
    assert "…" not in text
    for row in BATCH.rows:
        for value in row:
            assert re.search(rf"(?<![\w.]){re.escape(value)}(?![\w.])", text), value
    assert all(len(line) <= width for line in text.splitlines())


def test_a_table_that_fits_is_drawn_as_a_table() -> None:
    text = shown(BATCH, 200, terminal=True)
    header = next(line for line in text.splitlines() if "currency" in line)
    assert header.split() == list(BATCH.columns)


def test_a_table_too_wide_shows_one_record_per_line() -> None:
    lines = shown(BATCH, 80, terminal=True).splitlines()
    assert lines[0] == BATCH.title
    assert lines[1].startswith("  JPY BELOW_MINIMUM  accounts 1  owed 29000")


def test_piped_one_line_per_row_no_wider_than_needed() -> None:
    text = shown(BATCH, 10_000, terminal=False)
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("| ") and "currency" not in line]
    assert len(rows) == len(BATCH.rows)
    longest = max(len(" | ".join(row)) for row in BATCH.rows)
    assert max(len(line) for line in lines) < longest + 4 * len(BATCH.columns)
    assert "…" not in text


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("1590000.00", "JPY", "1590000"),
        ("-29000.00", "JPY", "-29000"),
        ("12.50", "JPY", "12.50"),  # never rounded: a JPY amount with a fraction keeps it
        ("10000.00", "USD", "10000.00"),
        ("0.00", "XXX", "0.00"),
    ],
    ids=["jpy", "jpy-negative", "jpy-fraction-kept", "usd", "unknown-currency"],
)
def test_amounts_show_their_currency_digits(text: str, currency: str, expected: str) -> None:
    assert shown_amount(text, currency, {"JPY": 0, "USD": 2}) == expected


@pytest.fixture(scope="module")
def history_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """February and March of the sample, March rerun on the corrected inputs with a reason."""
    out = tmp_path_factory.mktemp("history") / "out"
    for month in ("2026-02", "2026-03"):
        run_month(RunOptions(month=month, input_dir=SAMPLE, output_dir=out))
    run_month(
        RunOptions(
            month="2026-03",
            input_dir=SAMPLE.with_name("sample-corrected"),
            output_dir=out,
            reason="March earnings of 1357924 and 4490127 corrected",
        )
    )
    return out


@pytest.mark.parametrize("width", [80, 200], ids=["80-columns", "200-columns"])
def test_history_shows_every_value_whole_on_a_terminal(
    history_folder: Path, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug: at 80 columns history wrapped names a few letters at a time (`Mega/n Bowe/n`)."""
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    monkeypatch.setattr(cli, "out", console)
    result = CliRunner().invoke(cli.app, ["history", "--output", str(history_folder)])
    assert result.exit_code == 0, result.output
    text = ESCAPES.sub("", console.file.getvalue())
    runs = sorted(path.name for path in (history_folder / "runs").iterdir())
    for value in [*runs, "March earnings of 1357924 and 4490127 corrected", "proposed"]:
        assert value in text, value
    assert "…" not in text


def test_history_piped_is_one_line_per_run(history_folder: Path) -> None:
    result = CliRunner().invoke(cli.app, ["history", "--output", str(history_folder)])
    assert result.exit_code == 0, result.output
    runs = sorted(path.name for path in (history_folder / "runs").iterdir())
    lines = [line for line in result.stdout.splitlines() if line.startswith("| 2026-")]
    assert [line.split("|")[2].strip() for line in lines] == runs
    longest = max(len(line) for line in lines)
    assert all(len(line) == longest for line in lines)  # as wide as its rows, no wider
