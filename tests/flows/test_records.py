"""The JSON records (docs/records.md): each file reads into its model and is written back byte
for byte, keys a newer version added are ignored, and the JSON Schemas in docs/schemas/ are the
models' own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from flows.records import (
    SCHEMAS,
    WRITE_COMMAND,
    ChainHead,
    Manifest,
    NoBatch,
    ProposedBatch,
    PublishJournal,
    Registry,
    ReleaseJournal,
    ReleaseRecord,
    record_bytes,
    schema_text,
)

ROOT = Path(__file__).resolve().parents[2]
RECORDS = Path(__file__).with_name("records")

# Files as earlier versions wrote them: (file, model, how it is written).
WRITTEN = [
    pytest.param("manifest-proposed.json", Manifest, {}, id="manifest-first-run"),
    pytest.param("manifest-proposed-rerun.json", Manifest, {}, id="manifest-rerun"),
    pytest.param("manifest-none-rerun.json", Manifest, {}, id="manifest-no-batch"),
    pytest.param("release.json", ReleaseRecord, {}, id="release"),
    pytest.param("release-chain.json", ChainHead, {}, id="release-chain-head"),
    pytest.param("published.json", Registry, {"sort_keys": True}, id="registry"),
    pytest.param("journal.json", PublishJournal, {"sort_keys": True}, id="publish-journal"),
    pytest.param("release-journal.json", ReleaseJournal, {"indent": None}, id="release-journal"),
]


@pytest.mark.parametrize(("name", "model", "how"), WRITTEN)
def test_a_record_is_written_back_byte_for_byte(
    name: str, model: type[BaseModel], how: dict[str, object]
) -> None:
    data = (RECORDS / name).read_bytes()
    assert record_bytes(model.model_validate_json(data), **how) == data  # type: ignore[arg-type]


def test_the_release_record_keeps_a_name_in_any_script_as_escaped_json() -> None:
    data = (RECORDS / "release.json").read_bytes()
    record = ReleaseRecord.model_validate_json(data)
    assert (record.approved_by, record.note) == ("Zoë Ω Approver", "ok ✓")
    assert b'"approved_by": "Zo\\u00eb \\u03a9 Approver"' in data


def test_the_payment_batch_reads_as_its_form() -> None:
    proposed = Manifest.read(RECORDS / "manifest-proposed.json")
    rerun = Manifest.read(RECORDS / "manifest-proposed-rerun.json")
    behind = Manifest.read(RECORDS / "manifest-none-rerun.json")
    assert isinstance(proposed.payments, ProposedBatch) and proposed.proposes_batch
    assert proposed.payments.owed_changes is None
    assert b'"owed_changes"' not in proposed.to_json()
    assert isinstance(rerun.payments, ProposedBatch) and rerun.payments.owed_changes is not None
    assert rerun.payments.owed_changes.basis == "statement"
    assert isinstance(behind.payments, NoBatch) and not behind.proposes_batch
    assert behind.payments.owed_changes.basis == "next batch"


def test_the_two_digests_keep_their_keys() -> None:
    manifest = Manifest.read(RECORDS / "manifest-proposed.json")
    data = json.loads((RECORDS / "manifest-proposed.json").read_text(encoding="utf-8"))
    assert (manifest.month_digest, manifest.input_digest) == (data["digest"], data["input_digest"])
    registry = Registry.model_validate_json((RECORDS / "published.json").read_bytes()).root
    entries = json.loads((RECORDS / "published.json").read_text(encoding="utf-8"))
    assert {m: e.month_digest for m, e in registry.items()} == {
        m: e["digest"] for m, e in entries.items()
    }


def test_keys_a_newer_version_added_are_ignored(tmp_path: Path) -> None:
    data = json.loads((RECORDS / "manifest-none-rerun.json").read_text(encoding="utf-8"))
    data["added_later"] = {"anything": 1}
    data["reconciliation"]["added_later"] = True
    data["payments"]["owed_changes"]["added_later"] = []
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    assert Manifest.read(path) == Manifest.read(RECORDS / "manifest-none-rerun.json")
    record = json.loads((RECORDS / "release.json").read_text(encoding="utf-8"))
    record["added_later"] = "x"
    assert ReleaseRecord.model_validate(record).approved_by == "Zoë Ω Approver"


def test_keys_an_older_version_did_not_write_get_their_defaults(tmp_path: Path) -> None:
    data = json.loads((RECORDS / "manifest-proposed.json").read_text(encoding="utf-8"))
    del data["input_digest"]
    data["payments"] = {}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    manifest = Manifest.read(path)
    assert (manifest.input_digest, manifest.payments) == ("", None)
    record = json.loads((RECORDS / "release.json").read_text(encoding="utf-8"))
    del record["note"]
    assert ReleaseRecord.model_validate(record).note == ""


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_written_json_schema_is_the_models(name: str) -> None:
    path = ROOT / "docs" / "schemas" / f"{name}.schema.json"
    written = path.read_text(encoding="utf-8") if path.is_file() else ""
    assert written == schema_text(SCHEMAS[name]), (
        f"docs/schemas/{name}.schema.json is not the JSON Schema of its model: run "
        f"`{WRITE_COMMAND}` from the repository's root and commit the files"
    )


def test_every_schema_file_is_of_a_record() -> None:
    files = {path.name for path in (ROOT / "docs" / "schemas").glob("*.schema.json")}
    assert files == {f"{name}.schema.json" for name in SCHEMAS}, (
        f"docs/schemas/ holds a schema of no record: remove it and run `{WRITE_COMMAND}`"
    )
