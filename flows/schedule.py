"""The monthly deployment (docs/operations.md): cron 0 6 1 * * UTC, the previous month by default.

`prefect.yaml` describes the same deployment for `prefect deploy`; a test keeps them in step.
"""

from __future__ import annotations

from prefect.schedules import Cron

from flows.defaults import DEFAULTS
from flows.orchestration import CRON, DEPLOYMENT_NAME, TAGS, monthly_payout


def deployment_parameters(
    input_dir: str,
    output_dir: str,
    rules: str | None = None,
    approval_timeout_hours: float = DEFAULTS.approval_timeout_hours,
) -> dict[str, object]:
    """Parameters of the scheduled run: no month, so the flow takes the previous month; and
    it waits for a person to approve the payment batch."""
    return {
        "month": None,
        "input_dir": input_dir,
        "output_dir": output_dir,
        "rules": rules,
        "await_approval": True,
        # A whole number of hours stays an integer, as prefect.yaml writes it.
        "approval_timeout_hours": (
            int(approval_timeout_hours)
            if float(approval_timeout_hours).is_integer()
            else approval_timeout_hours
        ),
    }


def serve_monthly(
    input_dir: str = str(DEFAULTS.input_dir),
    output_dir: str = str(DEFAULTS.output_dir),
    rules: str | None = None,
    approval_timeout_hours: float = DEFAULTS.approval_timeout_hours,
) -> None:
    """Serve the deployment from this process until it is stopped (needs a Prefect server)."""
    monthly_payout.serve(
        name=DEPLOYMENT_NAME,
        schedule=Cron(CRON, timezone="UTC"),
        parameters=deployment_parameters(input_dir, output_dir, rules, approval_timeout_hours),
        description="Publishes last month's co-op payouts and waits for approval of the batch.",
        tags=list(TAGS),
        limit=1,
    )
