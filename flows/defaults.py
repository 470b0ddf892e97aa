"""The defaults of every command and of the deployment, in one place (docs/operations.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Defaults:
    """Where a run reads and writes when it is not told, and how long approval may wait."""

    input_dir: Path = Path("data/sample")
    output_dir: Path = Path("data/output")
    # The earnings rows with an exception given their sentences at a time (stage route; the
    # chunk of the chunked path, docs/performance.md).
    chunk_rows: int = 250_000
    # How long the served flow waits for a person to approve the batch (docs/payments.md).
    approval_timeout_hours: float = 72.0


DEFAULTS = Defaults()
