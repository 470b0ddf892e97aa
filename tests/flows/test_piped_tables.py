"""Into a file or a pipe, the summary's tables keep their full width (a bug: the batch table was
cut at 80 columns, statuses showed as `BELOW_MI…`)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_the_batch_table_is_not_cut_when_piped(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["check", "--month", "2026-03", "--input", str(SAMPLE), "--output", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "BELOW_MINIMUM" in result.output and "FORFEITED" in result.output
    assert "…" not in result.output
