"""The JSON records coop-payouts writes, as typed models (docs/records.md): the run's manifest,
the registry of published months, the publish and release journals, a release's
`release.json` and the release chain's head.

Each model reads a file written by this or an older version and ignores the keys a newer
version added. Each is written through `record_bytes`, the one rendering that keeps the files'
bytes as they have always been (the release chain hashes `release.json`). Their JSON Schemas
are in `docs/schemas/`; `python -m flows.records --write-schemas` writes them again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from coop_rules.money import AmountText
from coop_rules.payments import PaymentsReconciliation
from coop_rules.reconciliation import Reconciliation


def code_version() -> str:
    """The installed version of coop-payouts."""
    try:
        return version("coop-payouts")
    except PackageNotFoundError:
        return "unknown"


class Record(BaseModel):
    """A JSON record: keys a newer version added are ignored on reading; a field named apart
    from its JSON key is filled by either."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def record_bytes(record: BaseModel, *, indent: int | None = 2, sort_keys: bool = False) -> bytes:
    """A record as its file holds it: `json.dumps` of its JSON keys, non-ASCII escaped."""
    data = record.model_dump(mode="json", by_alias=True)
    return json.dumps(data, indent=indent, sort_keys=sort_keys).encode("utf-8")


RecordT = TypeVar("RecordT", bound=BaseModel)


def records_of(model: type[RecordT], rows: Iterable[dict[str, Any]]) -> list[RecordT]:
    """Rows (a frame's, amounts as text) as records of `model`."""
    return [model.model_validate(row) for row in rows]


# The month digest is kept under the key "digest" in the manifest and the registry.
DIGEST = AliasChoices("digest", "month_digest")


# --- The manifest (docs/reruns.md, "The run folder") ---------------------------------------------


class InputRecord(Record):
    """One input file as the run read it."""

    path: str
    sha256: str
    rows: int
    extra_columns: list[str]


class OutputRecord(Record):
    """One file of the run folder."""

    sha256: str
    rows: int

    # Built from a file's sha256 and its row count, in that order, where the file is written.
    def __init__(self, sha256: str, rows: int) -> None:
        BaseModel.__init__(self, sha256=sha256, rows=rows)


class RecordedStatuses(Record):
    """The plan statuses by what they mean for a payout."""

    approved: list[str]
    held: list[str]
    rejected: list[str]
    unsubmitted: list[str]


class RecordedSettings(Record):
    """The rule settings a run used, as the manifest records them (`coop_rules/rules.toml`):
    minimums as the exact text of their decimal."""

    payment_day: int
    resubmission_grace_days: int
    cap_basis: str
    statuses: RecordedStatuses
    currencies: dict[str, int]
    minimum_payment: dict[str, str] = Field(default_factory=dict)
    hold_days: int | None = None


class RulesRecord(Record):
    """The rules file of a run: where it was, its sha256 and its settings."""

    path: str
    sha256: str
    settings: RecordedSettings


class OutcomeTotal(Record):
    """Plans, earnings rows and sums of one currency and outcome."""

    currency: str
    outcome: str
    plans: int
    earnings_rows: int
    earned_amount: AmountText
    payable_amount: AmountText
    unpaid_amount: AmountText


class ExceptionCount(Record):
    """How many exception rows one input file has of one code."""

    source: str
    code: str
    rows: int


class ChangeTotal(Record):
    """What a rerun changed in one currency (docs/reruns.md, "changes.parquet")."""

    currency: str
    plans: int
    earned_difference: AmountText
    payable_difference: AmountText


class ChangeSummary(Record):
    """What a rerun changed against the run it replaced, in figures and in a few lines."""

    previous_run_id: str
    plans: int
    per_currency: list[ChangeTotal]
    summary: str


class BatchTotal(Record):
    """Accounts and sums of one currency and statement status of the batch."""

    currency: str
    status: str
    accounts: int
    owed: AmountText
    order_amount: AmountText
    forfeit_amount: AmountText
    carried_amount: AmountText


class OwedChange(Record):
    """One account whose owed the run changes (docs/payments.md, "Accounts whose owed
    changes")."""

    mpn_id: str
    currency: str
    before: AmountText
    after: AmountText
    difference: AmountText


class OwedChangeRecord(Record):
    """The accounts whose owed changes: how compared, how many, the largest, and the file."""

    basis: Literal["statement", "next batch"]
    compared_with: str | None
    accounts: int
    largest: list[OwedChange]
    file: str


class CurrencyDifference(Record):
    """What a month published behind a released batch takes to the next batch, per currency."""

    currency: str
    difference: AmountText


class ProposedBatch(Record):
    """The payments of a run that proposes a batch (docs/payments.md)."""

    batch: Literal["proposed"] = "proposed"
    payment_date: str
    basis: dict[str, str]
    totals: list[BatchTotal]
    reconciliation: PaymentsReconciliation
    stale_batches: list[str]
    notes: list[str]
    owed_changes: OwedChangeRecord | None = None

    @model_serializer(mode="wrap")
    def _owed_changes_only_on_a_rerun(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A first run of a month compares with nothing: its record has no such key.
        data = handler(self)
        if self.owed_changes is None:
            data.pop("owed_changes", None)
        return data


class NoBatch(Record):
    """The payments of a run published behind a released batch: no batch; its difference
    goes to the next one (docs/payments.md, "Corrections after release")."""

    batch: Literal["none"] = "none"
    payment_date: str
    released_batch: str
    difference_to_next_batch: list[CurrencyDifference]
    owed_changes: OwedChangeRecord
    notes: list[str]


Payments = Annotated[ProposedBatch | NoBatch, Field(discriminator="batch")]


class Manifest(Record):
    """Everything `manifest.json` holds (docs/reruns.md). Amounts are text: JSON has no exact
    decimal. `month_digest` is the file's `digest`: of the inputs, the rules and the runs of the
    earlier months; `input_digest` is of the inputs and the rules alone."""

    run_id: str
    earning_month: str
    payment_date: str
    started_at: str
    finished_at: str
    reason: str | None
    supersedes: str | None
    later_months_to_rerun: list[str]
    inputs: dict[str, InputRecord]
    in_scope_earnings_rows: int
    rules: RulesRecord
    paid_before_basis: dict[str, str]
    month_digest: str = Field(validation_alias=DIGEST, serialization_alias="digest")
    input_digest: str = ""
    outputs: dict[str, OutputRecord]
    totals: list[OutcomeTotal]
    exceptions_by_code: list[ExceptionCount]
    reconciliation: Reconciliation
    changes: ChangeSummary | None = None
    payments: Payments | None = None
    code_version: str = Field(default_factory=code_version)

    @field_validator("payments", mode="before")
    @classmethod
    def _no_payments(cls, value: Any) -> Any:
        # Manifests of versions before payments hold an empty record.
        return value or None

    def to_json(self) -> bytes:
        return record_bytes(self)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """A manifest from its file; keys a newer version added are left out."""
        return cls.model_validate_json(path.read_bytes())

    @property
    def exception_count(self) -> int:
        return sum(row.rows for row in self.exceptions_by_code)

    @property
    def proposes_batch(self) -> bool:
        """Whether the run proposes a batch for its payment date."""
        return isinstance(self.payments, ProposedBatch)


# --- The output folder's state (docs/reruns.md, "Publishing") ------------------------------------


class RegistryEntry(Record):
    """The run that publishes a month, and what its result rests on. `month_digest` is the
    file's `digest` (inputs, rules and the earlier months' runs); `input_digest` is of the
    inputs and rules alone."""

    run_id: str
    month_digest: str = Field(validation_alias=DIGEST, serialization_alias="digest")
    input_digest: str = ""


class Registry(RootModel[dict[str, RegistryEntry]]):
    """`.coop/published.json`: month -> the run that publishes it."""


class PublishJournal(Record):
    """`.coop/journal.json`: a publish in progress, rolled back or completed by the next
    command. Paths are relative to the output folder."""

    month: str
    run_id: str
    backups: dict[str, str | None]
    targets: dict[str, str] | None = None


class ReleaseJournal(RootModel[list[tuple[str, str]]]):
    """`.coop/release-journal.json`: the renames (staged, target) of a release in progress,
    relative to the output folder; the next command completes them."""


# --- Releases (docs/payments.md, "Proposed, then released", "The release chain") ----------------


class ReleaseTotal(Record):
    """Ledger rows and their sum of one currency and kind."""

    currency: str
    kind: str
    rows: int
    amount: AmountText


class ReleaseRecord(Record):
    """`releases/<payment_date>/release.json`: who released which run's batch, its totals, and
    the sha256 of its bank file, its ledger file and the release before it."""

    run_id: str
    earning_month: str
    payment_date: str
    approved_by: str
    note: str = ""
    released_at: str
    totals: list[ReleaseTotal]
    bank_file_sha256: str
    ledger_sha256: str
    previous_release: str | None
    previous_release_sha256: str | None


class ChainHead(Record):
    """`.coop/release-chain.json`: the latest release's sha256 and how many releases there are."""

    payment_date: str
    release_sha256: str
    releases: int


# --- JSON Schemas ---------------------------------------------------------------------------------

SCHEMAS: dict[str, type[BaseModel]] = {
    "manifest": Manifest,
    "registry": Registry,
    "publish-journal": PublishJournal,
    "release-journal": ReleaseJournal,
    "release": ReleaseRecord,
    "release-chain": ChainHead,
    "reconciliation": Reconciliation,
    "payments-reconciliation": PaymentsReconciliation,
}
SCHEMA_DIR = Path("docs") / "schemas"
WRITE_COMMAND = "python -m flows.records --write-schemas"


def schema_text(model: type[BaseModel]) -> str:
    """A model's JSON Schema as its file in docs/schemas/ holds it."""
    return json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schemas(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Write every record's JSON Schema to `folder/<name>.schema.json`; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMAS.items():
        path = folder / f"{name}.schema.json"
        path.write_text(schema_text(model), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    """`--write-schemas [FOLDER]`: write the JSON Schemas (default docs/schemas)."""
    if not argv or argv[0] != "--write-schemas":
        print(f"usage: {WRITE_COMMAND} [FOLDER]", file=sys.stderr)
        return 2
    for path in write_schemas(Path(argv[1]) if len(argv) > 1 else SCHEMA_DIR):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
