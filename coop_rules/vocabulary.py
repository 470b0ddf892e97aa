"""The one vocabulary of coop-payouts: outcomes, reasons, exception codes and dataset names.

Every module imports these codes, outcomes and dataset names rather than spelling them; column
names are declared by the schemas (`schemas/`) and the rule modules that build them.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """Outcome of a payout row (docs/payouts.md, "The plan rules")."""

    PAY = "PAY"
    HELD = "HELD"
    NOT_PAYABLE = "NOT_PAYABLE"


class Reason(StrEnum):
    """Reason of a payout row, from the first plan rule that applies (docs/payouts.md)."""

    OUTSIDE_PROGRAM_YEAR = "OUTSIDE_PROGRAM_YEAR"
    RESUBMITTED_AFTER_GRACE = "RESUBMITTED_AFTER_GRACE"
    PLAN_REJECTED = "PLAN_REJECTED"
    PLAN_NOT_APPROVED = "PLAN_NOT_APPROVED"
    NO_ACTIVITY = "NO_ACTIVITY"
    NO_LIMIT = "NO_LIMIT"
    CAPPED = "CAPPED"
    NEGATIVE_NET = "NEGATIVE_NET"


class Code(StrEnum):
    """Exception codes (docs/inputs.md, "Exception codes"): schema and key codes, then routing
    codes."""

    MISSING_VALUE = "MISSING_VALUE"
    INVALID_VALUE = "INVALID_VALUE"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"
    DUPLICATE_KEY = "DUPLICATE_KEY"
    DUPLICATE_PLAN = "DUPLICATE_PLAN"
    UNKNOWN_REFERENCE = "UNKNOWN_REFERENCE"
    INCONSISTENT_DATES = "INCONSISTENT_DATES"
    NO_PROGRAM_PERIOD = "NO_PROGRAM_PERIOD"
    NO_PLAN = "NO_PLAN"
    PLAN_INVALID = "PLAN_INVALID"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"


class PaymentStatus(StrEnum):
    """Status of an account's statement row in a payment batch, in the order the first that
    applies decides (docs/payments.md)."""

    RECOVERING = "RECOVERING"
    NOTHING_DUE = "NOTHING_DUE"
    FORFEITED = "FORFEITED"
    HELD_PROFILE = "HELD_PROFILE"
    BELOW_MINIMUM = "BELOW_MINIMUM"
    PAY = "PAY"


class LedgerKind(StrEnum):
    """What a released ledger row records: money paid out, or a balance forfeited."""

    PAYMENT = "PAYMENT"
    FORFEIT = "FORFEIT"


class ProfileStatus(StrEnum):
    """`profile_status` of a payment profile."""

    ENROLLED = "Enrolled"
    ACTION_REQUIRED = "Action required"


class Dataset(StrEnum):
    """Input dataset stems (docs/inputs.md, "The files"), in the order they are checked."""

    PROGRAMS = "programs"
    PLANS = "plans"
    PLAN_LIMITS = "plan_limits"
    CAMPAIGNS = "campaigns"
    ACTIVITIES = "activities"
    EARNINGS = "earnings"
    PAYMENT_PROFILES = "payment_profiles"


REQUIRED_DATASETS: tuple[Dataset, ...] = (
    Dataset.PROGRAMS,
    Dataset.PLANS,
    Dataset.PLAN_LIMITS,
    Dataset.EARNINGS,
    # Required: without it every account would be paid as enrolled (docs/inputs.md).
    Dataset.PAYMENT_PROFILES,
)
OPTIONAL_DATASETS: tuple[Dataset, ...] = (
    Dataset.CAMPAIGNS,
    Dataset.ACTIVITIES,
)

# The 1-based data-row number of a row in its input file: a column of every frame read from an
# input, and the column of an exception row that names it (docs/inputs.md).
ROW_NUMBER = "row_number"
