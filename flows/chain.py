"""The release chain (docs/payments.md, "The release chain"): nothing under `ledger/` or
`releases/` is trusted as found.

Every release writes `releases/<payment_date>/release.json`, which records the sha256 of its
bank file, of its ledger file and of the previous release's `release.json`; the latest
release's sha256 is kept in `.coop/release-chain.json` (the head). Walking back from the head
names every file a release placed, with its bytes. `verified_releases` checks the folder
against that walk before any command reads a ledger row or a release: a file missing, changed,
added or linked stops the command (exit 1) with one sentence naming the file.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from flows.errors import ChainBroken
from flows.folder import PART, OutputFolder
from flows.records import ChainHead, ReleaseRecord

RELEASE_FILES = ("payments.csv", "release.json")
STOPPED = "the command stopped and changed nothing; put back the file as the release left it"


@dataclass(frozen=True)
class ChainPaths:
    """Where the chain's files live in one output folder."""

    root: Path

    @property
    def ledger(self) -> Path:
        return self.root / "ledger"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def head(self) -> Path:
        return self.root / ".coop" / "release-chain.json"

    def ledger_partition(self, pay_date: str) -> Path:
        return self.ledger / f"payment_date={pay_date}"

    def ledger_file(self, pay_date: str) -> Path:
        return self.ledger_partition(pay_date) / PART

    def release_dir(self, pay_date: str) -> Path:
        return self.releases / pay_date


def sha256_of(data: bytes) -> str:
    """The sha256 of a file's bytes, as the chain records it."""
    return hashlib.sha256(data).hexdigest()


def head_record(pay_date: str, release_json: bytes, count: int) -> ChainHead:
    """What the head file holds after the release of `pay_date` (the chain's `count`th)."""
    return ChainHead(payment_date=pay_date, release_sha256=sha256_of(release_json), releases=count)


def previous_link(folder: OutputFolder) -> tuple[str | None, str | None]:
    """What ties a new `release.json` to the release before it: that release's payment date
    and the sha256 of its `release.json` (both None for the first release)."""
    head = _read_head(ChainPaths(folder.root))
    if head is None:
        return None, None
    return head.payment_date, head.release_sha256


def chain_length(folder: OutputFolder) -> int:
    head = _read_head(ChainPaths(folder.root))
    return 0 if head is None else head.releases


def verified_releases(folder: OutputFolder) -> dict[str, ReleaseRecord]:
    """payment date -> release.json of every release, oldest first, once every file under
    `ledger/` and `releases/` has been checked against the chain; `ChainBroken` otherwise."""
    paths = ChainPaths(folder.root)
    for top in (paths.ledger, paths.releases):
        if top.is_symlink():
            raise _broken(top, "is a link, not the folder the releases wrote")
    head = _read_head(paths)
    records: dict[str, ReleaseRecord] = {}
    if head is not None:
        pay_date: str | None = head.payment_date
        expected: str | None = head.release_sha256
        while pay_date is not None:
            if pay_date in records:
                raise _broken(paths.head, "names a release twice")
            record = _checked_release(paths, pay_date, expected)
            records[pay_date] = record
            pay_date, expected = record.previous_release, record.previous_release_sha256
        if len(records) != head.releases:
            raise _broken(
                paths.head,
                f"counts {head.releases} releases but {len(records)} are chained",
            )
    _no_extras(paths, records)
    return dict(sorted(records.items()))


def _read_head(paths: ChainPaths) -> ChainHead | None:
    if not paths.head.exists() and not paths.head.is_symlink():
        return None
    data = _regular_bytes(paths.head, "the release chain's head")
    try:
        return ChainHead.model_validate_json(data)
    except ValidationError:
        raise _broken(paths.head, "is not the head record a release writes") from None


def _checked_release(paths: ChainPaths, pay_date: str, expected: str | None) -> ReleaseRecord:
    """The release record of `pay_date`, its bytes and its two files as the chain says."""
    folder = paths.release_dir(pay_date)
    if folder.is_symlink():
        raise _broken(folder, "is a link, not the folder the release wrote")
    where = f"the release of {pay_date}"
    record_path = folder / "release.json"
    data = _regular_bytes(record_path, where)
    if sha256_of(data) != expected:
        raise _broken(record_path, f"was changed after {where} was recorded")
    try:
        record = ReleaseRecord.model_validate_json(data)
    except ValidationError:
        raise _broken(record_path, f"is not a record of {where} with its chain") from None
    files = {
        folder / "payments.csv": record.bank_file_sha256,
        paths.ledger_file(pay_date): record.ledger_sha256,
    }
    if paths.ledger_partition(pay_date).is_symlink():
        raise _broken(paths.ledger_partition(pay_date), "is a link, not the folder a release wrote")
    for path, sha in files.items():
        if sha256_of(_regular_bytes(path, where)) != sha:
            raise _broken(path, f"was changed after {where} recorded it")
    return record


def _regular_bytes(path: Path, whose: str) -> bytes:
    """The bytes of a file the chain names: there, a regular file, no other name (link)."""
    try:
        status = path.lstat()
    except FileNotFoundError:
        raise _broken(path, f"is missing, though {whose} names it") from None
    if stat.S_ISLNK(status.st_mode):
        raise _broken(path, "is a link, not the file the release wrote")
    if not stat.S_ISREG(status.st_mode):
        raise _broken(path, "is not a file")
    if status.st_nlink > 1:
        raise _broken(path, "has another name (a hard link) besides the one the release gave it")
    return path.read_bytes()


def _no_extras(paths: ChainPaths, records: dict[str, ReleaseRecord]) -> None:
    """Nothing under ledger/ or releases/ but what the chain names."""
    named: dict[Path, dict[str, tuple[str, ...]]] = {
        paths.releases: {date: RELEASE_FILES for date in records},
        paths.ledger: {paths.ledger_partition(date).name: (PART,) for date in records},
    }
    for top, children in named.items():
        if not top.exists():
            continue
        if not top.is_dir():
            raise _broken(top, "is not a folder")
        for entry in sorted(top.iterdir()):
            if entry.name not in children:
                raise _broken(entry, "is not part of any release the chain records")
            if entry.is_symlink() or not entry.is_dir():
                raise _broken(entry, "is not the folder a release wrote")
            for inner in sorted(entry.iterdir()):
                if inner.name not in children[entry.name]:
                    raise _broken(inner, "is not part of any release the chain records")


def _broken(path: Path, what: str) -> ChainBroken:
    return ChainBroken(f"{os.fspath(path)} {what}: {STOPPED} (docs/payments.md, the release chain)")
