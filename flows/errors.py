"""Errors a run ends with, each carrying its exit code (docs/operations.md, "Commands") and one
plain sentence."""

from __future__ import annotations


class RunError(Exception):
    """A run that cannot go on; `str(error)` is the sentence printed on stderr."""

    exit_code = 1


class UsageError(RunError):
    """A bad option: a month that is not YYYY-MM, a missing folder (exit 2)."""

    exit_code = 2


class InputRejected(RunError):
    """An input file rejected as a whole, or a row exception under --strict (exit 3)."""

    exit_code = 3


class Refused(RunError):
    """A changed rerun without --reason, or another run holds the lock (exit 4)."""

    exit_code = 4


class ReconciliationFailed(RunError):
    """The run's figures do not add up; nothing is published (exit 1)."""

    exit_code = 1


class OutputUnusable(UsageError):
    """--output is not a folder a run can write: the filesystem root, a file, read-only (exit 2)."""


class DiskFull(RunError):
    """The disk of the output folder filled up; the published data was left as it was (exit 1)."""


class ChainBroken(RunError):
    """A file under ledger/ or releases/ is not as the release chain recorded it: missing,
    changed, added or linked (exit 1); the command changed nothing."""

    exit_code = 1


class ReleaseNotPlaced(RunError):
    """A release that could not put its ledger file and bank file in place (exit 1); the
    sentence says what was and was not done."""

    exit_code = 1
