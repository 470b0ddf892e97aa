"""Payments: what each account is owed, the batch proposed for a payment date, and what a
release writes to the ledger (docs/payments.md). Pure polars, no I/O.

Money is paid to an account: (`mpn_id`, `currency`). When month M is published, an account's
`owed` is everything its plans were found payable over the published months <= M, less every
ledger row (released payments and forfeits, whatever their month), less what the proposed,
not yet released batches of months before M already order or forfeit. Each status is a named
function giving the condition under which it applies; `PAYMENT_RULES` lists them in the
documented order and the first that applies decides the statement row's status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from polars.expr.whenthen import ChainedThen, Then
from pydantic import BaseModel

from coop_rules.money import MONEY, WIDE, ZERO, AmountText, fits_money, to_money, to_wide
from coop_rules.settings import RuleSettings
from coop_rules.vocabulary import LedgerKind, PaymentStatus, ProfileStatus

ACCOUNT = ("mpn_id", "currency")

# What the caller hands over (empty frames of these schemas are fine).
PAYABLE_SCHEMA: dict[str, pl.DataType] = {
    "mpn_id": pl.String(),
    "currency": pl.String(),
    "earning_month": pl.String(),
    "payable_amount": MONEY,
}
RELEASED_SCHEMA: dict[str, pl.DataType] = {
    "mpn_id": pl.String(),
    "currency": pl.String(),
    "amount": MONEY,
}
PROPOSED_SCHEMA: dict[str, pl.DataType] = {
    "mpn_id": pl.String(),
    "currency": pl.String(),
    "order_amount": MONEY,
    "forfeit_amount": MONEY,
}
PROFILE_SCHEMA: dict[str, pl.DataType] = {
    "mpn_id": pl.String(),
    "profile_status": pl.String(),
    "action_required_since": pl.Date(),
}

# The columns of a statement row, with their types.
STATEMENT_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "earning_month": pl.String(),
    "payment_date": pl.Date(),
    "mpn_id": pl.String(),
    "currency": pl.String(),
    "payable_this_month": MONEY,
    "brought_forward": MONEY,
    "owed": MONEY,
    "order_amount": MONEY,
    "forfeit_amount": MONEY,
    "carried_amount": MONEY,
    "status": pl.String(),
    "payment_id": pl.String(),
}
STATEMENT_COLUMNS = tuple(STATEMENT_SCHEMA)
PAYMENT_ORDER_COLUMNS = ("payment_id", "mpn_id", "currency", "payment_date", "amount", "plan_count")
LEDGER_COLUMNS = (
    "payment_id",
    "kind",
    "mpn_id",
    "currency",
    "payment_date",
    "amount",
    "earning_month",
    "run_id",
    "approved_by",
    "released_at",
)
RELEASED_AT = pl.Datetime("us", "UTC")

# Column the status rules read besides `owed`, added by `statement_rows`.
_MINIMUM = "__minimum"


# --- Statuses, in order: the first that applies decides -----------------------------------------


def _action_required() -> pl.Expr:
    return (pl.col("profile_status") == ProfileStatus.ACTION_REQUIRED.value).fill_null(False)


def recovering(settings: RuleSettings) -> pl.Expr:
    """`owed` < 0: more was released than is now owed (a correction lowered a paid month)."""
    return pl.col("owed") < ZERO


def nothing_due(settings: RuleSettings) -> pl.Expr:
    """`owed` = 0."""
    return pl.col("owed") == ZERO


def forfeited(settings: RuleSettings) -> pl.Expr:
    """profile `Action required` and `payment_date` > `action_required_since` + `hold_days`."""
    deadline = pl.col("action_required_since") + timedelta(days=settings.hold_days)
    return _action_required() & (pl.col("payment_date") > deadline).fill_null(False)


def held_profile(settings: RuleSettings) -> pl.Expr:
    """profile `Action required` (within `hold_days`), or no valid profile row."""
    return _action_required() | pl.col("profile_status").is_null()


def below_minimum(settings: RuleSettings) -> pl.Expr:
    """`owed` < the currency's minimum (0 for a currency the rules give no minimum)."""
    return pl.col("owed") < pl.col(_MINIMUM)


@dataclass(frozen=True)
class PaymentRule:
    """One row of the ordered table of statement statuses."""

    applies: Callable[[RuleSettings], pl.Expr]
    status: PaymentStatus


PAYMENT_RULES: tuple[PaymentRule, ...] = (
    PaymentRule(recovering, PaymentStatus.RECOVERING),
    PaymentRule(nothing_due, PaymentStatus.NOTHING_DUE),
    PaymentRule(forfeited, PaymentStatus.FORFEITED),
    PaymentRule(held_profile, PaymentStatus.HELD_PROFILE),
    PaymentRule(below_minimum, PaymentStatus.BELOW_MINIMUM),
)


def first_status(settings: RuleSettings) -> pl.Expr:
    """The status of the first payment rule that applies; otherwise PAY."""
    first, *rest = PAYMENT_RULES
    chain: Then | ChainedThen = pl.when(first.applies(settings)).then(pl.lit(first.status.value))
    for rule in rest:
        chain = chain.when(rule.applies(settings)).then(pl.lit(rule.status.value))
    return chain.otherwise(pl.lit(PaymentStatus.PAY.value))


# --- Statement rows -------------------------------------------------------------------------------


def _per_account(frame: pl.DataFrame, amount: pl.Expr, name: str) -> pl.LazyFrame:
    return frame.lazy().group_by(list(ACCOUNT)).agg(amount.sum().alias(name))


def _minimums(settings: RuleSettings) -> pl.LazyFrame:
    minimums = settings.minimum_payment
    return pl.LazyFrame(
        {"currency": list(minimums), _MINIMUM: list(minimums.values())},
        schema={"currency": pl.String, _MINIMUM: MONEY},
    )


def payment_id(payment_date: pl.Expr) -> pl.Expr:
    """`<payment_date as YYYYMMDD>-<mpn_id>-<currency>` (docs/payments.md): the one form, used
    to make the id and, by the output schemas, to check it."""
    return pl.format(
        "{}-{}-{}", payment_date.dt.strftime("%Y%m%d"), pl.col("mpn_id"), pl.col("currency")
    )


def account_balances(
    *,
    payable: pl.DataFrame,
    released: pl.DataFrame,
    proposed: pl.DataFrame,
    month: str,
) -> pl.LazyFrame:
    """Per account with a non-zero `owed` or `payable_this_month`: `payable_this_month`,
    `owed` and `brought_forward`, in `Decimal(38, 2)`.

    owed = payable of months <= M - ledger - (order + forfeit) of earlier proposed batches;
    brought_forward = owed - payable_this_month. The sums stay wide: the payable of many
    months may not fit `Decimal(18, 2)` though the balance does (`balances_beyond_money`).
    """
    upto = payable.filter(pl.col("earning_month") <= month)
    this_month = payable.filter(pl.col("earning_month") == month)
    amounts = ("payable_to_date", "payable_this_month", "released", "proposed")
    return (
        _per_account(upto, pl.col("payable_amount"), "payable_to_date")
        .join(
            _per_account(this_month, pl.col("payable_amount"), "payable_this_month"),
            on=list(ACCOUNT),
            how="full",
            coalesce=True,
        )
        .join(
            _per_account(released, pl.col("amount"), "released"),
            on=list(ACCOUNT),
            how="full",
            coalesce=True,
        )
        .join(
            _per_account(proposed, pl.col("order_amount") + pl.col("forfeit_amount"), "proposed"),
            on=list(ACCOUNT),
            how="full",
            coalesce=True,
        )
        .with_columns(to_wide(pl.col(amounts)).fill_null(0))
        .with_columns(
            to_wide(pl.col("payable_to_date") - pl.col("released") - pl.col("proposed")).alias(
                "owed"
            )
        )
        .with_columns(
            to_wide(pl.col("owed") - pl.col("payable_this_month")).alias("brought_forward")
        )
        .filter((pl.col("owed") != ZERO) | (pl.col("payable_this_month") != ZERO))
        .select(*ACCOUNT, "payable_this_month", "owed", "brought_forward")
    )


def balances_beyond_money(
    *,
    payable: pl.DataFrame,
    released: pl.DataFrame,
    proposed: pl.DataFrame,
    month: str,
) -> pl.DataFrame:
    """The accounts whose `owed`, `payable_this_month` or `brought_forward` does not fit
    `Decimal(18, 2)` (an exact comparison), largest `owed` first: a statement row cannot hold
    them, so the batch cannot be proposed. Empty when every balance fits."""
    balances = account_balances(payable=payable, released=released, proposed=proposed, month=month)
    fits = (
        fits_money(pl.col("owed"))
        & fits_money(pl.col("payable_this_month"))
        & fits_money(pl.col("brought_forward"))
    )
    return (
        balances.filter(~fits)
        .sort(pl.col("owed").abs(), *ACCOUNT, descending=[True, False, False])
        .collect()
    )


def statement_rows(
    *,
    payable: pl.DataFrame,
    released: pl.DataFrame,
    proposed: pl.DataFrame,
    profiles: pl.DataFrame,
    month: str,
    payment_date: date,
    run_id: str,
    settings: RuleSettings,
) -> pl.DataFrame:
    """One statement row per account with a non-zero `owed` or `payable_this_month`.

    `payable` (PAYABLE_SCHEMA): `payable_amount` of the published months <= `month` (this
    run's included), per plan or already per account and month; later months are ignored.
    `released` (RELEASED_SCHEMA): every ledger row, payments and forfeits alike.
    `proposed` (PROPOSED_SCHEMA): the statement rows of the proposed, not yet released batches
    of months before `month`. `profiles` (PROFILE_SCHEMA): the valid payment profile rows; an
    account they do not list is held.

    owed and brought_forward as `account_balances`; carried = owed - order - forfeit. A
    balance that does not fit `Decimal(18, 2)` raises: check `balances_beyond_money` first.
    """
    accounts = account_balances(
        payable=payable, released=released, proposed=proposed, month=month
    ).with_columns(to_money(pl.col("payable_this_month", "owed", "brought_forward")))
    return (
        with_status(accounts, profiles, payment_date, settings)
        .pipe(with_order_and_forfeit)
        .pipe(with_carried_and_payment_id, payment_date=payment_date)
        .with_columns(pl.lit(run_id).alias("run_id"), pl.lit(month).alias("earning_month"))
        .select(STATEMENT_COLUMNS)
        .sort(list(ACCOUNT))
        .collect()
    )


def with_status(
    accounts: pl.LazyFrame, profiles: pl.DataFrame, payment_date: date, settings: RuleSettings
) -> pl.LazyFrame:
    """Each account's balance with its profile, its currency's minimum and its status."""
    profile_rows = profiles.lazy().select(list(PROFILE_SCHEMA))
    return (
        accounts.join(profile_rows, on="mpn_id", how="left")
        .join(_minimums(settings), on="currency", how="left")
        .with_columns(
            pl.col(_MINIMUM).fill_null(ZERO),
            pl.lit(payment_date).alias("payment_date"),
        )
        .with_columns(first_status(settings).alias("status"))
    )


def with_order_and_forfeit(rows: pl.LazyFrame) -> pl.LazyFrame:
    """`order_amount` is `owed` on a PAY row, `forfeit_amount` is `owed` on a FORFEITED row."""
    owed = pl.col("owed")
    status = pl.col("status")
    return rows.with_columns(
        to_money(pl.when(status == PaymentStatus.PAY.value).then(owed).otherwise(ZERO)).alias(
            "order_amount"
        ),
        to_money(pl.when(status == PaymentStatus.FORFEITED.value).then(owed).otherwise(ZERO)).alias(
            "forfeit_amount"
        ),
    )


def with_carried_and_payment_id(rows: pl.LazyFrame, *, payment_date: date) -> pl.LazyFrame:
    """carried = owed - order - forfeit; a PAY row's `payment_id`, null on every other row."""
    return rows.with_columns(
        to_money(pl.col("owed") - pl.col("order_amount") - pl.col("forfeit_amount")).alias(
            "carried_amount"
        ),
        pl.when(pl.col("status") == PaymentStatus.PAY.value)
        .then(payment_id(pl.lit(payment_date)))
        .otherwise(pl.lit(None, pl.String))
        .alias("payment_id"),
    )


# --- payments.csv -------------------------------------------------------------------------------


def payment_orders(statements: pl.DataFrame, payouts_of_month: pl.DataFrame) -> pl.DataFrame:
    """The rows of payments.csv: one per `PAY` statement row, with `plan_count`, the account's
    plans with a payable amount above 0 in the month (0 when only a balance brought forward is
    paid). `payouts_of_month` holds the month's payout rows (mpn_id, currency, payable_amount).
    """
    plans = (
        payouts_of_month.filter(pl.col("payable_amount") > ZERO)
        .group_by(list(ACCOUNT))
        .agg(pl.len().cast(pl.Int64).alias("plan_count"))
    )
    return (
        statements.filter(pl.col("status") == PaymentStatus.PAY.value)
        .join(plans, on=list(ACCOUNT), how="left")
        .select(
            "payment_id",
            "mpn_id",
            "currency",
            "payment_date",
            pl.col("order_amount").alias("amount"),
            pl.col("plan_count").fill_null(0),
        )
        .sort(list(ACCOUNT))
    )


def amount_text(amount: pl.Expr, currency: pl.Expr, settings: RuleSettings) -> pl.Expr:
    """A `Decimal(18, 2)` amount as plain decimal text with its currency's minor digits
    (USD `10000.00`, JPY `150000`), exact: digits are only dropped when they are zeros, so an
    amount that does not fit its currency keeps them rather than being rounded."""
    text = amount.cast(MONEY).cast(pl.String)  # always two decimals: "150000.00", "-0.50"
    digits = currency.replace_strict(settings.currencies, default=2, return_dtype=pl.Int64)
    return (
        pl.when((digits == 0) & text.str.ends_with(".00"))
        .then(text.str.head(-3))
        .when((digits == 1) & text.str.ends_with("0"))
        .then(text.str.head(-1))
        .otherwise(text)
    )


# --- What a rerun changes per account -----------------------------------------------------------

# One row per account whose owed changes: before, after and after - before. A swing between two
# balances may exceed Decimal(18, 2), so the difference is kept wide.
OWED_CHANGE_SCHEMA: dict[str, pl.DataType] = {
    "mpn_id": pl.String(),
    "currency": pl.String(),
    "before": MONEY,
    "after": MONEY,
    "difference": WIDE,
}


def owed_changes(before: pl.DataFrame, after: pl.DataFrame, amount: str) -> pl.DataFrame:
    """The accounts whose `amount`, summed per account, differs between `before` and `after`
    (an account missing from one side counts 0 there), largest absolute difference first.

    For a rerun that proposes a batch, the two sides are the replaced and the new statement
    (`owed`); for a run that proposes none, the month's payout rows published before and now
    (`payable_amount`): their difference is what each account's owed takes to the next batch.
    """

    def side(frame: pl.DataFrame, name: str) -> pl.LazyFrame:
        return _per_account(frame, pl.col(amount), name)

    return (
        side(before, "before")
        .join(side(after, "after"), on=list(ACCOUNT), how="full", coalesce=True)
        .with_columns(to_money(pl.col("before", "after").fill_null(0)))
        .with_columns(to_wide(pl.col("after") - pl.col("before")).alias("difference"))
        .filter(pl.col("difference") != ZERO)
        .sort(pl.col("difference").abs(), *ACCOUNT, descending=[True, False, False])
        .select(list(OWED_CHANGE_SCHEMA))
        .collect()
    )


# --- Reconciliation ---------------------------------------------------------------------------


def _sums(frame: pl.DataFrame, **amounts: pl.Expr) -> pl.DataFrame:
    # Wide: the accounts of a currency together may hold more than Decimal(18, 2) does.
    return frame.group_by("currency").agg(
        to_wide(expr.sum()).alias(name) for name, expr in amounts.items()
    )


class CurrencyPaymentsReconciliation(BaseModel):
    """One currency of the payments reconciliation: its sums as text, and which hold."""

    currency: str
    owed: AmountText
    order_amount: AmountText
    forfeit_amount: AmountText
    carried_amount: AmountText
    payable_to_date: AmountText
    ledger_amount: AmountText
    proposed_earlier_amount: AmountText
    split_holds: bool
    balance_holds: bool
    holds: bool


class PaymentsReconciliation(BaseModel):
    """The payments reconciliation as the manifest records it (docs/payments.md,
    "Reconciliation of payments"); unknown keys of a newer version are ignored on reading."""

    per_currency: list[CurrencyPaymentsReconciliation]
    amounts_hold: bool
    statement_rows_unbalanced: int
    holds: bool


def reconcile_payments(
    statements: pl.DataFrame,
    *,
    payable: pl.DataFrame,
    released: pl.DataFrame,
    proposed: pl.DataFrame,
    month: str,
) -> PaymentsReconciliation:
    """The figures of the payments reconciliation, as text, and whether each holds.

    Per currency: Σ owed = Σ order + Σ forfeit + Σ carried; and Σ owed = Σ payable of the
    published months <= M - Σ ledger amounts - Σ (order + forfeit) of the proposed earlier
    batches. Per row: owed = brought_forward + payable_this_month = order + forfeit + carried,
    and no order or forfeit is negative.
    """
    per_currency = currency_sums(
        statements, payable=payable, released=released, proposed=proposed, month=month
    ).pipe(with_currency_checks)
    unbalanced = unbalanced_statement_rows(statements)
    amounts_hold = bool(
        per_currency.select(pl.col("split_holds") & pl.col("balance_holds")).to_series().all()
    )
    return PaymentsReconciliation(
        per_currency=[currency_record(row) for row in per_currency.iter_rows(named=True)],
        amounts_hold=amounts_hold,
        statement_rows_unbalanced=unbalanced,
        holds=amounts_hold and unbalanced == 0,
    )


def currency_sums(
    statements: pl.DataFrame,
    *,
    payable: pl.DataFrame,
    released: pl.DataFrame,
    proposed: pl.DataFrame,
    month: str,
) -> pl.DataFrame:
    """Per currency, the sums the reconciliation compares (a currency missing from one counts 0)."""
    upto = payable.filter(pl.col("earning_month") <= month)
    figures = ("owed", "order", "forfeit", "carried", "payable", "ledger", "proposed")
    return (
        _sums(
            statements,
            owed=pl.col("owed"),
            order=pl.col("order_amount"),
            forfeit=pl.col("forfeit_amount"),
            carried=pl.col("carried_amount"),
        )
        .join(
            _sums(upto, payable=pl.col("payable_amount")),
            on="currency",
            how="full",
            coalesce=True,
        )
        .join(_sums(released, ledger=pl.col("amount")), on="currency", how="full", coalesce=True)
        .join(
            _sums(proposed, proposed=pl.col("order_amount") + pl.col("forfeit_amount")),
            on="currency",
            how="full",
            coalesce=True,
        )
        .with_columns(pl.col(figures).fill_null(ZERO))
        .sort("currency")
    )


def with_currency_checks(sums: pl.DataFrame) -> pl.DataFrame:
    """Whether owed splits into order, forfeit and carried, and equals the balance."""
    return sums.with_columns(
        (pl.col("owed") == pl.col("order") + pl.col("forfeit") + pl.col("carried")).alias(
            "split_holds"
        ),
        (pl.col("owed") == pl.col("payable") - pl.col("ledger") - pl.col("proposed")).alias(
            "balance_holds"
        ),
    )


def unbalanced_statement_rows(statements: pl.DataFrame) -> int:
    """How many statement rows break owed = brought forward + payable = order + forfeit +
    carried, or order or forfeit an amount below 0."""
    owed = pl.col("owed")
    return statements.filter(
        (owed != pl.col("brought_forward") + pl.col("payable_this_month"))
        | (owed != pl.col("order_amount") + pl.col("forfeit_amount") + pl.col("carried_amount"))
        | (pl.col("order_amount") < ZERO)
        | (pl.col("forfeit_amount") < ZERO)
    ).height


def currency_record(row: dict[str, Any]) -> CurrencyPaymentsReconciliation:
    """One currency's row of sums and checks as the manifest records it."""
    return CurrencyPaymentsReconciliation(
        currency=row["currency"],
        owed=str(row["owed"]),
        order_amount=str(row["order"]),
        forfeit_amount=str(row["forfeit"]),
        carried_amount=str(row["carried"]),
        payable_to_date=str(row["payable"]),
        ledger_amount=str(row["ledger"]),
        proposed_earlier_amount=str(row["proposed"]),
        split_holds=row["split_holds"],
        balance_holds=row["balance_holds"],
        holds=row["split_holds"] and row["balance_holds"],
    )


# --- Release ------------------------------------------------------------------------------------


def ledger_rows(statements: pl.DataFrame, approved_by: str, released_at: datetime) -> pl.DataFrame:
    """What releasing a batch appends to the ledger: a `PAYMENT` row per `PAY` statement row
    (its `order_amount`, its `payment_id`) and a `FORFEIT` row per `FORFEITED` row (its
    `forfeit_amount`, no `payment_id`)."""
    status = pl.col("status")
    kept = statements.filter(status.is_in([PaymentStatus.PAY.value, PaymentStatus.FORFEITED.value]))
    pays = status == PaymentStatus.PAY.value
    return kept.select(
        pl.when(pays)
        .then(pl.col("payment_id"))
        .otherwise(pl.lit(None, pl.String))
        .alias("payment_id"),
        pl.when(pays)
        .then(pl.lit(LedgerKind.PAYMENT.value))
        .otherwise(pl.lit(LedgerKind.FORFEIT.value))
        .alias("kind"),
        "mpn_id",
        "currency",
        "payment_date",
        to_money(
            pl.when(pays).then(pl.col("order_amount")).otherwise(pl.col("forfeit_amount"))
        ).alias("amount"),
        "earning_month",
        "run_id",
        pl.lit(approved_by, pl.String).alias("approved_by"),
        pl.lit(released_at).cast(RELEASED_AT).alias("released_at"),
    ).sort(list(ACCOUNT))
