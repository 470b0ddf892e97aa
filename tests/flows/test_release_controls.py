"""Release controls (docs/payments.md, "A release names its batch" and "The release chain"):
a release names the run whose batch was reviewed, nothing under ledger/ or releases/ is trusted
as found, the run's files are checked against its manifest, and a release is placed whole or
not at all."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.batches import batch_states
from flows.cli import app
from flows.errors import ChainBroken, Refused, ReleaseNotPlaced
from flows.folder import OutputFolder, read_registry
from flows.month import RunOptions
from flows.release import release_month
from flows.run import run_month
from tests.flows import payment_inputs
from tests.flows.releasing import published_run, release

JANUARY, FEBRUARY, MARCH = "2026-01", "2026-02", "2026-03"
PAID_JANUARY, PAID_FEBRUARY = "2026-02-15", "2026-03-15"
AMOUNTS = {
    (key, month): amount
    for month in (JANUARY, FEBRUARY, MARCH)
    for key, amount in (("USD", "250.00"), ("JPY", "40000"), ("HELD", "300.00"))
}


def run(inputs: Path, out: Path, month: str, reason: str | None = None, empty: bool = False):
    options = RunOptions(
        month=month, input_dir=inputs, output_dir=out, reason=reason, allow_empty=empty
    )
    return run_month(options)


@pytest.fixture
def released(tmp_path: Path) -> tuple[Path, Path]:
    """January and February run and released, March run (its batch proposed)."""
    inputs = payment_inputs.write_inputs(tmp_path / "in", AMOUNTS)
    out = tmp_path / "out"
    for month in (JANUARY, FEBRUARY):
        run(inputs, out, month)
        release(out, month, "Megan Bowen")
    run(inputs, out, MARCH)
    return inputs, out


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file of the output folder but the lock, by path."""
    return {
        str(path.relative_to(out)): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and not path.is_symlink() and path.name != "lock"
    }


# --- A release names its batch ---------------------------------------------------------------


def test_a_rerun_since_the_review_is_refused_naming_both_runs(tmp_path: Path) -> None:
    inputs = payment_inputs.write_inputs(tmp_path / "in", AMOUNTS)
    out = tmp_path / "out"
    reviewed = run(inputs, out, JANUARY).run_id
    amounts = {**AMOUNTS, ("USD", JANUARY): "9250.00"}
    payment_inputs.write_earnings(inputs, amounts)
    rerun = run(inputs, out, JANUARY, reason="late row").run_id
    before = snapshot(out)
    with pytest.raises(Refused) as refused:
        release_month(out, JANUARY, "Megan Bowen", run_id=reviewed)
    assert reviewed in str(refused.value) and rerun in str(refused.value)
    assert snapshot(out) == before
    done = release_month(out, JANUARY, "Megan Bowen", run_id=rerun)
    assert done.release.run_id == rerun


def test_a_run_of_another_folder_or_month_is_refused(tmp_path: Path) -> None:
    inputs = payment_inputs.write_inputs(tmp_path / "in", AMOUNTS)
    here, elsewhere = tmp_path / "out", tmp_path / "other"
    run(inputs, here, JANUARY)
    other = run(inputs, elsewhere, JANUARY).run_id
    with pytest.raises(Refused, match=f"not a run of {JANUARY} in {here}"):
        release_month(here, JANUARY, "Megan Bowen", run_id=other)
    run(inputs, here, FEBRUARY)
    with pytest.raises(Refused, match=f"not a run of {FEBRUARY}"):
        release_month(here, FEBRUARY, "Megan Bowen", run_id=published_run(here, JANUARY))
    with pytest.raises(Refused, match="not a run of"):
        release_month(here, JANUARY, "Megan Bowen", run_id="../other")
    assert not (here / "releases").exists()


def test_the_cli_requires_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["release", "--month", JANUARY, "--approved-by", "X", "--output", str(tmp_path)]
    )
    assert result.exit_code == 2 and "--run" in result.output


# --- Nothing on disk is trusted as found -------------------------------------------------------


def _ledger(out: Path, pay_date: str) -> Path:
    return out / "ledger" / f"payment_date={pay_date}" / "part-0.parquet"


def _delete_ledger(out: Path) -> Path:
    path = _ledger(out, PAID_JANUARY)
    path.unlink()
    return path


def _copy_ledger(out: Path) -> Path:
    path = _ledger(out, PAID_JANUARY).with_name("part-1.parquet")
    shutil.copy(_ledger(out, PAID_JANUARY), path)
    return path


def _link_partition(out: Path) -> Path:
    """The issue's symlinked partition: a new date's folder pointing at an older one."""
    path = out / "ledger" / "payment_date=2026-04-15"
    path.symlink_to(_ledger(out, PAID_JANUARY).parent)
    return path


def _future_release(out: Path) -> Path:
    path = out / "releases" / "2099-01-15"
    shutil.copytree(out / "releases" / PAID_FEBRUARY, path)
    return path


def _edit_release_record(out: Path) -> Path:
    path = out / "releases" / PAID_JANUARY / "release.json"
    record = json.loads(path.read_text())
    record["approved_by"] = "Someone Else"
    path.write_text(json.dumps(record, indent=2))
    return path


def _edit_bank_file(out: Path) -> Path:
    path = out / "releases" / PAID_FEBRUARY / "payments.csv"
    path.write_bytes(path.read_bytes() + b"20260315-9999999-USD,9999999,USD,2026-03-15,9000.00,1\n")
    return path


def _delete_latest_release(out: Path) -> Path:
    """Both files of the latest release gone: only the chain's head remembers it."""
    shutil.rmtree(out / "releases" / PAID_FEBRUARY)
    shutil.rmtree(_ledger(out, PAID_FEBRUARY).parent)
    return out / "releases" / PAID_FEBRUARY / "release.json"


def _hard_link(out: Path) -> Path:
    path = _ledger(out, PAID_FEBRUARY)
    os.link(path, out / "elsewhere.parquet")
    return path


TAMPERING: dict[str, Callable[[Path], Path]] = {
    "deleted-ledger-file": _delete_ledger,
    "extra-copy-of-a-ledger-file": _copy_ledger,
    "symlinked-ledger-partition": _link_partition,
    "release-folder-copied-in": _future_release,
    "edited-release-record": _edit_release_record,
    "edited-bank-file": _edit_bank_file,
    "latest-release-deleted": _delete_latest_release,
    "hard-linked-ledger-file": _hard_link,
}


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_tampering_stops_every_command_naming_the_file(
    released: tuple[Path, Path], tamper: Callable[[Path], Path]
) -> None:
    inputs, out = released
    path = tamper(out)
    before = snapshot(out)
    registry = read_registry(OutputFolder(out))
    with pytest.raises(ChainBroken, match=str(path.relative_to(out))):
        batch_states(OutputFolder(out))
    with pytest.raises(ChainBroken, match=str(path.relative_to(out))):
        release(out, MARCH, "Megan Bowen")
    with pytest.raises(ChainBroken, match=str(path.relative_to(out))):
        run(inputs, out, "2026-04", empty=True)
    assert read_registry(OutputFolder(out)) == registry
    assert snapshot(out) == before
    for command in (["history"], ["release", "--month", MARCH, "--run", "x", "--approved-by", "X"]):
        result = CliRunner().invoke(app, [*command, "--output", str(out)])
        assert result.exit_code == 1, result.output
        assert str(path.relative_to(out)) in result.output
        assert "Traceback" not in result.output and "unexpected" not in result.output


def test_an_edited_run_bank_file_is_not_released(released: tuple[Path, Path]) -> None:
    _, out = released
    bank = out / "runs" / published_run(out, MARCH) / "payments.csv"
    bank.write_bytes(bank.read_bytes() + b"20260415-9999999-USD,9999999,USD,2026-04-15,9000.00,1\n")
    before = snapshot(out)
    with pytest.raises(ChainBroken, match=f"{bank}.*changed"):
        release(out, MARCH, "Megan Bowen")
    assert snapshot(out) == before


def test_an_edited_run_statement_is_not_released(released: tuple[Path, Path]) -> None:
    _, out = released
    statements = out / "runs" / published_run(out, MARCH) / "statements.parquet"
    frame = pl.read_parquet(statements)
    frame.write_parquet(statements, compression="uncompressed")
    with pytest.raises(ChainBroken, match="statements.parquet"):
        release(out, MARCH, "Megan Bowen")
    assert not (out / "releases" / "2026-04-15").exists()


def test_the_chain_links_each_release_to_the_one_before(released: tuple[Path, Path]) -> None:
    _, out = released
    first = json.loads((out / "releases" / PAID_JANUARY / "release.json").read_text())
    second = json.loads((out / "releases" / PAID_FEBRUARY / "release.json").read_text())
    assert (first["previous_release"], first["previous_release_sha256"]) == (None, None)
    assert second["previous_release"] == PAID_JANUARY
    record = (out / "releases" / PAID_JANUARY / "release.json").read_bytes()
    assert second["previous_release_sha256"] == hashlib.sha256(record).hexdigest()
    ledger = _ledger(out, PAID_FEBRUARY).read_bytes()
    assert second["ledger_sha256"] == hashlib.sha256(ledger).hexdigest()


# --- A release is placed whole or not at all ---------------------------------------------------


def test_releases_that_is_a_file_refuses_before_anything_moves(tmp_path: Path) -> None:
    inputs = payment_inputs.write_inputs(tmp_path / "in", AMOUNTS)
    out = tmp_path / "out"
    run(inputs, out, JANUARY)
    (out / "releases").write_text("not a folder")
    with pytest.raises(ChainBroken, match="releases is not a folder.*changed nothing"):
        release(out, JANUARY, "Megan Bowen")
    assert not (out / "ledger").exists()
    (out / "releases").unlink()
    assert release(out, JANUARY, "Megan Bowen").status == "released"


def test_a_bank_file_that_cannot_be_placed_leaves_no_ledger_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = payment_inputs.write_inputs(tmp_path / "in", AMOUNTS)
    out = tmp_path / "out"
    run(inputs, out, JANUARY)
    real_replace = os.replace

    def across_mounts(source, target) -> None:
        if Path(target).parent.name == "releases":
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(target))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", across_mounts)
    with pytest.raises(ReleaseNotPlaced) as failed:
        release(out, JANUARY, "Megan Bowen")
    sentence = str(failed.value)
    assert "nothing was released" in sentence and "left as it was" not in sentence
    assert not _ledger(out, PAID_JANUARY).exists()
    assert not (out / "ledger").exists() or not list((out / "ledger").iterdir())
    assert not (out / ".coop" / "release-journal.json").exists()
    monkeypatch.undo()
    assert batch_states(OutputFolder(out))[JANUARY].state == "proposed"
    assert release(out, JANUARY, "Megan Bowen").status == "released"


def test_the_release_sentence_shows_jpy_without_minor_digits(tmp_path: Path) -> None:
    inputs = payment_inputs.write_inputs(tmp_path / "in", AMOUNTS)
    out = tmp_path / "out"
    run(inputs, out, JANUARY)
    done = release(out, JANUARY, "Megan Bowen")
    assert "payment JPY 40000 (1)" in done.message and "payment USD 250.00 (1)" in done.message
