"""The monthly payout run (SPEC sections 1-6) as plain functions, and the Prefect flow over them.

The plain functions do the work and are what the tests call; the flow wraps each step in a task
that receives paths and settings and returns paths or small summaries (frames never cross a task
boundary, so Prefect neither pickles nor hashes them). No task caches: a corrected file at the
same path is always read afresh.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from pathlib import Path

import polars as pl

from coop_rules.calendar import month_text, parse_month, payment_date
from coop_rules.money import MONEY
from coop_rules.month import (
    CheckedInputs,
    EarningsTally,
    MonthResult,
    check_references,
    compute_month,
)
from coop_rules.settings import RulesError, RuleSettings, parse_rules
from coop_rules.vocabulary import Dataset
from flows import io
from flows.errors import InputRejected, ReconciliationFailed, Refused, RunError, UsageError
from flows.publish import OutputFolder, publish, read_registry, run_lock
from schemas.outputs import Changes, Exceptions, Payments, Payouts

Report = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class RunOptions:
    """What one `coop-payouts run` was asked to do."""

    month: str
    input_dir: Path = Path("data/sample")
    output_dir: Path = Path("data/output")
    rules_path: Path | None = None
    reason: str | None = None
    strict: bool = False


@dataclass
class RunOutcome:
    """What a run did: published, or unchanged; the summary a person and Prefect are shown."""

    status: str  # "published" | "unchanged"
    month: str
    run_id: str
    run_dir: Path | None = None
    manifest: dict = field(default_factory=dict)
    message: str = ""


def code_version() -> str:
    try:
        return version("coop-payouts")
    except PackageNotFoundError:
        return "unknown"


def default_rules_path() -> Path:
    """The rules file shipped in coop_rules/."""
    return Path(str(files("coop_rules").joinpath("rules.toml")))


def load_rules(rules_path: Path | None) -> tuple[RuleSettings, Path, str]:
    """Read and parse the rules file; returns the settings, its path and its sha256."""
    path = rules_path or default_rules_path()
    if not path.is_file():
        raise UsageError(f"--rules {path}: no such file")
    data = path.read_bytes()
    try:
        settings = parse_rules(data.decode("utf-8"), source=path.name)
    except (RulesError, UnicodeDecodeError) as exc:
        raise UsageError(f"--rules {path}: {exc}") from None
    return settings, path, hashlib.sha256(data).hexdigest()


def validate_month(month: str) -> str:
    try:
        parse_month(month)
    except ValueError as exc:
        raise UsageError(f"--month: {exc}") from None
    return month


def new_run_id(month: str) -> str:
    """A run id that sorts by month and time and is safe as a folder name."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{month}_{stamp}_{secrets.token_hex(3)}"


def fingerprint(files_: dict[Dataset, io.InputFile]) -> dict[str, str]:
    """sha256 of each input file, by dataset."""
    return {dataset.value: io.input_sha256(file) for dataset, file in sorted(files_.items())}


# Earnings rows checked at a time: memory holds one chunk of text, not the month.
CHUNK_ROWS = 1_000_000


def read_inputs(
    files_: dict[Dataset, io.InputFile], report: Report = _quiet
) -> tuple[dict[Dataset, pl.DataFrame | None], dict[str, list[str]]]:
    """Read every input but the earnings as text, and check every file's header; returns the
    frames and the extra columns of each file. The earnings are read by `earnings_chunks`."""
    frames: dict[Dataset, pl.DataFrame | None] = {}
    extras: dict[str, list[str]] = {}
    for dataset in Dataset:
        file = files_.get(dataset)
        frames[dataset] = None
        if file is None:
            continue
        if dataset == Dataset.EARNINGS:
            extras[dataset.value] = io.input_columns(file)
            continue
        report(f"reading {file.name}")
        frames[dataset], extras[dataset.value] = io.read_text(file)
    return frames, extras


def earnings_chunks(
    file: io.InputFile, report: Report = _quiet, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pl.DataFrame]:
    """The earnings file in chunks of text, reporting progress as it goes."""
    rows = 0
    for chunk in io.text_chunks(file, chunk_rows):
        yield chunk
        rows += chunk.height
        report(f"{file.name}: {rows:,} rows checked and routed")


def periods_containing(programs: pl.DataFrame, month: str) -> pl.DataFrame:
    """`start` and `end` of every program period (read leniently) containing M's first day."""
    first_day = parse_month(month)
    return programs.select(
        pl.col("period_start").str.to_date("%Y-%m-%d", strict=False).alias("start"),
        pl.col("period_end").str.to_date("%Y-%m-%d", strict=False).alias("end"),
    ).filter((pl.col("start") <= first_day) & (pl.col("end") >= first_day))


def paid_before_basis(folder: OutputFolder, programs: pl.DataFrame, month: str) -> dict[str, str]:
    """The published earlier months of M's period that `paid_before_amount` rests on, with
    the run that published each."""
    periods = periods_containing(programs, month)
    if periods.is_empty():
        return {}
    start = month_text(periods.get_column("start").min())
    registry = read_registry(folder)
    return {m: registry[m]["run_id"] for m in sorted(registry) if start <= m < month}


def later_months(folder: OutputFolder, programs: pl.DataFrame, month: str) -> list[str]:
    """Published months after M in M's period: their `paid_before_amount` rested on M."""
    periods = periods_containing(programs, month)
    if periods.is_empty():
        return []
    last = month_text(periods.get_column("end").max())
    return [m for m in sorted(read_registry(folder)) if month < m <= last]


def paid_before(folder: OutputFolder, basis: dict[str, str]) -> pl.DataFrame:
    """`paid_before_amount` per plan: payable of the published earlier months (SPEC 4)."""
    parts = [folder.published_file("payouts", m) for m in basis]
    parts = [p for p in parts if p.exists()]
    if not parts:
        return pl.DataFrame(schema={"plan_id": pl.String, "paid_before_amount": MONEY})
    return (
        pl.scan_parquet(parts)
        .group_by("plan_id")
        .agg(pl.col("payable_amount").sum().cast(MONEY).alias("paid_before_amount"))
        .collect()
    )


def digest_of(inputs: dict[str, str], rules_sha: str, basis: dict[str, str]) -> str:
    """One digest of what a month's result depends on: inputs, rules and paid_before basis."""
    text = json.dumps({"inputs": inputs, "rules": rules_sha, "basis": basis}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def input_digest(inputs: dict[str, str], rules_sha: str) -> str:
    text = json.dumps({"inputs": inputs, "rules": rules_sha}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def with_run_columns(frame: pl.DataFrame, run_id: str, month: str) -> pl.DataFrame:
    """Exceptions with the run id and month first, as SPEC 5 lists them."""
    return frame.select(
        pl.lit(run_id).alias("run_id"), pl.lit(month).alias("earning_month"), pl.all()
    )


def changes(previous: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """Per plan, the previous and new payable amount and outcome, and the difference."""
    old = previous.select(
        "plan_id",
        pl.col("payable_amount").alias("previous_payable_amount"),
        pl.col("outcome").alias("previous_outcome"),
    )
    now = new.select(
        "plan_id",
        pl.col("payable_amount").alias("new_payable_amount"),
        pl.col("outcome").alias("new_outcome"),
    )
    zero = pl.lit(0).cast(MONEY)
    return (
        old.join(now, on="plan_id", how="full", coalesce=True)
        .with_columns(
            (
                pl.col("new_payable_amount").fill_null(zero)
                - pl.col("previous_payable_amount").fill_null(zero)
            )
            .cast(MONEY)
            .alias("difference")
        )
        .select(
            "plan_id",
            "previous_payable_amount",
            "new_payable_amount",
            "previous_outcome",
            "new_outcome",
            "difference",
        )
        .sort("plan_id")
    )


def _money_text(frame: pl.DataFrame) -> list[dict]:
    return [
        {
            key: (
                str(value)
                if value is not None and not isinstance(value, int | str | bool)
                else value
            )
            for key, value in row.items()
        }
        for row in frame.iter_rows(named=True)
    ]


def stage_run(
    folder: OutputFolder,
    run_id: str,
    result: MonthResult,
    exceptions: pl.DataFrame,
    previous_payouts: pl.DataFrame | None,
) -> tuple[Path, dict[str, Path], dict[str, dict]]:
    """Write the run's files into the staging area (nothing published yet).

    Returns the staged run folder, the staged month file of each published dataset (without
    the partition column) and, per run file, its sha256 and row count for the manifest.
    """
    folder.prepare()
    staged = folder.staging / run_id
    staged.mkdir()
    files = {"payouts.parquet": result.payouts, "exceptions.parquet": exceptions}
    if previous_payouts is not None:
        change_frame = changes(previous_payouts, result.payouts)
        Changes.validate(change_frame)
        files["changes.parquet"] = change_frame
    outputs = {
        name: {"sha256": io.write_parquet_atomic(frame, staged / name), "rows": frame.height}
        for name, frame in files.items()
    }
    outputs["payments.csv"] = {
        "sha256": io.write_bytes_atomic(io.payments_csv(result.payments), staged / "payments.csv"),
        "rows": result.payments.height,
    }
    staged_parts = {}
    for dataset, frame in (("payouts", result.payouts), ("exceptions", exceptions)):
        part = folder.staging / f"{run_id}-{dataset}.parquet"
        io.write_parquet_atomic(frame.drop("earning_month"), part)
        staged_parts[dataset] = part
    return staged, staged_parts, outputs


def run_month(options: RunOptions, report: Report = _quiet) -> RunOutcome:
    """One month, end to end: read, check, compute, stage, publish (SPEC 1-6).

    Holds the output folder's lock throughout; raises a RunError subclass for every outcome
    that is not "published" or "unchanged".
    """
    month = validate_month(options.month)
    settings, rules_path, rules_sha = load_rules(options.rules_path)
    folder = OutputFolder(options.output_dir)
    with run_lock(folder):
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        files_ = io.find_inputs(options.input_dir)
        # sha256 releases the GIL: the files are fingerprinted while the small ones are read.
        with ThreadPoolExecutor(max_workers=1) as pool:
            hashing = pool.submit(fingerprint, files_)
            text, extras = read_inputs(files_, report)
            report("fingerprinting inputs")
            shas = hashing.result()
        programs_text = text[Dataset.PROGRAMS]
        assert programs_text is not None
        basis = paid_before_basis(folder, programs_text, month)
        digest = digest_of(shas, rules_sha, basis)
        in_digest = input_digest(shas, rules_sha)
        published = read_registry(folder).get(month)
        if published and published["digest"] == digest:
            return RunOutcome(
                "unchanged",
                month,
                published["run_id"],
                folder.run_dir(published["run_id"]),
                message=(
                    f"{month} unchanged: run {published['run_id']} already published these "
                    "inputs and rules"
                ),
            )
        reason = options.reason
        if published and published["input_digest"] != in_digest and not reason:
            raise Refused(
                f"--reason: {month} was published by run {published['run_id']} from other "
                "inputs or rules; rerun with --reason TEXT to replace it"
            )
        if published and not reason:
            reason = "paid_before basis changed: an earlier month of the period was republished"

        run_id = new_run_id(month)
        report("checking inputs")
        input_rows = {d.value: frame.height for d, frame in text.items() if frame is not None}
        try:
            tally = EarningsTally(month, settings, check_references(text, settings))
            # The typed frames are what the rules read: free the text before the earnings.
            text.clear()
            for chunk in earnings_chunks(files_[Dataset.EARNINGS], report):
                tally.add(chunk)
            checked: CheckedInputs = tally.finish()
            input_rows[Dataset.EARNINGS.value] = checked.earnings.rows
            report("applying the rules")
            result: MonthResult = compute_month(
                checked, month, settings, run_id, paid_before(folder, basis)
            )
        except pl.exceptions.InvalidOperationError as exc:
            # A sum of valid amounts beyond Decimal(18, 2) is refused, never wrapped or rounded.
            raise RunError(
                f"a sum of {month}'s amounts does not fit Decimal(18, 2) "
                f"(16 digits before the point): {str(exc).splitlines()[0]}; nothing was published"
            ) from None
        exceptions = with_run_columns(result.exceptions, run_id, month)
        if options.strict and exceptions.height:
            first = exceptions.row(0, named=True)
            raise InputRejected(
                f"--strict: {exceptions.height} row exception(s); the first: "
                f"{first['source']} row {first['row_number']}, column {first['column']}: "
                f"{first['message']}"
            )
        if not result.reconciliation["holds"]:
            raise ReconciliationFailed(
                f"reconciliation of {month} does not hold "
                f"({json.dumps(result.reconciliation)}); nothing was published"
            )
        report("validating outputs")
        Payouts.validate(result.payouts)
        Exceptions.validate(exceptions)
        Payments.validate(result.payments)

        report("writing the run")
        supersedes = published["run_id"] if published else None
        previous = (
            pl.read_parquet(folder.run_dir(supersedes) / "payouts.parquet") if supersedes else None
        )
        staged, staged_parts, outputs = stage_run(folder, run_id, result, exceptions, previous)
        stale = later_months(folder, programs_text, month) if published else []

        manifest = {
            "run_id": run_id,
            "earning_month": month,
            "payment_date": payment_date(month, settings.payment_day).isoformat(),
            "started_at": started_at,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "reason": reason,
            "supersedes": supersedes,
            "later_months_to_rerun": stale,
            "inputs": {
                dataset.value: {
                    "path": str(file.path),
                    "sha256": shas[dataset.value],
                    "rows": input_rows.get(dataset.value, 0),
                    "extra_columns": extras.get(dataset.value, []),
                }
                for dataset, file in sorted(files_.items())
            },
            "in_scope_earnings_rows": result.reconciliation["in_scope_rows"],
            "rules": {
                "path": str(rules_path),
                "sha256": rules_sha,
                "settings": settings.model_dump(mode="json"),
            },
            "paid_before_basis": basis,
            "digest": digest,
            "outputs": outputs,
            "totals": _money_text(result.totals),
            "exceptions_by_code": _money_text(
                exceptions.group_by("source", "code").len("rows").sort("source", "code")
            ),
            "reconciliation": result.reconciliation,
            "code_version": code_version(),
        }
        io.write_bytes_atomic(
            json.dumps(manifest, indent=2).encode("utf-8"), staged / "manifest.json"
        )
        report("publishing")
        run_dir = publish(
            folder,
            month,
            run_id,
            staged,
            staged_parts,
            {"run_id": run_id, "digest": digest, "input_digest": in_digest},
        )
        message = f"{month} published by run {run_id}"
        if stale:
            message += (
                f"; later published months of the period rest on the replaced run: "
                f"{', '.join(stale)} (rerun them with backfill)"
            )
        return RunOutcome("published", month, run_id, run_dir, manifest, message)


__all__ = ["RunError", "RunOptions", "RunOutcome", "run_month"]
