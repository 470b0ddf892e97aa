"""Stage "propose payments": the payment batch for the payment date, written into the staged run
(docs/payments.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from coop_rules import payouts
from flows import io
from flows.manifest import OutputRecord
from flows.run import MonthRun, progress
from flows.stages.decide import Decided
from schemas.outputs import Payments


@dataclass(frozen=True)
class Proposed:
    """The batch's files and figures, as the manifest records them."""

    outputs: dict[str, OutputRecord]
    payments: dict[str, Any] = field(default_factory=dict)


def propose_payments(run: MonthRun, decided: Decided) -> Proposed:
    """Write payments.csv: what the month's payouts make payable per account."""
    progress.info("proposing payments")
    orders = payouts.payments(pl.read_parquet(run.staged / "payouts.parquet"))
    Payments.validate(orders)
    sha = io.write_bytes_atomic(io.payments_csv(orders), run.staged / "payments.csv")
    return Proposed({"payments.csv": OutputRecord(sha, orders.height)})
