"""Properties of payments over random sequences of runs, corrected reruns and releases on one
output folder (docs/payments.md).

Three accounts (`tests/flows/payment_inputs.py`: USD, JPY, and a USD partner whose profile
needs action, held and then forfeited) over four months of one program period. A sequence runs
months in any order, reruns a month with one earning corrected (with a reason), and releases
months; a release or a run may be refused, and then nothing in the folder may change. After
every step the folder is checked against the properties of `check_folder`.

Budget: the "ci" profile of tests/conftest.py gives 25 sequences (each run costs a
few tenths of a second); HYPOTHESIS_PROFILE=long gives more.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from flows.batches import batch_states
from flows.errors import ChainBroken, Refused
from flows.folder import OutputFolder, read_registry
from flows.month import RunOptions
from flows.run import run_month
from tests.flows import payment_inputs
from tests.flows.payment_inputs import ACCOUNTS, MONTHS, Amounts
from tests.flows.releasing import release

AMOUNTS = {
    "USD": ["0.00", "80.00", "150.00", "250.00", "700.00"],
    "JPY": ["0", "20000", "40000", "90000"],
    "HELD": ["0.00", "50.00", "300.00"],
}
ACCOUNT_KEYS = [account.key for account in ACCOUNTS]
Key = tuple[str, str]  # (mpn_id, currency)


@dataclass(frozen=True)
class Batch:
    """A published statement, as the test saw it published: by which run, of which month,
    at which step."""

    run_id: str
    month: str
    step: int


@dataclass
class Model:
    """What the test itself saw happen, independently of the folder's own records."""

    published_at: dict[str, int] = field(default_factory=dict)  # month -> step of last publish
    batches: dict[str, Batch] = field(default_factory=dict)  # payment date -> its statement
    released: dict[str, dict[str, str]] = field(default_factory=dict)  # date -> file -> sha256

    def fresh(self, batch: Batch) -> bool:
        """No month <= the batch's month was published after the batch was computed: what it
        rests on is still what is published."""
        return all(
            step <= batch.step for month, step in self.published_at.items() if month <= batch.month
        )


operations = st.one_of(
    st.tuples(st.just("run"), st.sampled_from(MONTHS), st.booleans()),
    st.tuples(
        st.just("rerun"),
        st.sampled_from(MONTHS),
        st.sampled_from(ACCOUNT_KEYS).flatmap(
            lambda key: st.tuples(st.just(key), st.sampled_from(AMOUNTS[key]))
        ),
    ),
    st.tuples(st.just("release"), st.sampled_from(MONTHS)),
    # What finance does each month: release the earliest batch not yet released.
    st.tuples(st.just("release"), st.none()),
    st.tuples(st.just("release"), st.none()),
)
# Each month is run once, in a random order, each run followed by up to two other operations.
sequences = st.permutations(MONTHS).flatmap(
    lambda order: st.tuples(*(st.lists(operations, max_size=2) for _ in order)).map(
        lambda tails: [
            op
            for month, tail in zip(order, tails, strict=True)
            for op in [("run", month, False), *tail]
        ]
    )
)
first_amounts = st.fixed_dictionaries(
    {(key, month): st.sampled_from(AMOUNTS[key]) for key in ACCOUNT_KEYS for month in MONTHS}
)


def folder_bytes(out: Path) -> dict[str, str]:
    """sha256 of every file of the output folder but the lock (it holds the last pid)."""
    return {
        str(path.relative_to(out)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.relative_to(out).as_posix() != ".coop/lock"
    }


def per_account(frame: pl.DataFrame, amount: str) -> dict[Key, Decimal]:
    sums: dict[Key, Decimal] = defaultdict(Decimal)
    for mpn_id, currency, value in frame.select("mpn_id", "currency", amount).iter_rows():
        sums[(mpn_id, currency)] += value
    return sums


def read_statement(out: Path, pay_date: str) -> pl.DataFrame:
    return pl.read_parquet(out / "statements" / f"payment_date={pay_date}" / "part-0.parquet")


def read_ledger(out: Path) -> pl.DataFrame:
    files = sorted((out / "ledger").glob("payment_date=*/part-0.parquet"))
    frames = [
        pl.read_parquet(path).with_columns(pl.lit(path.parent.name.split("=")[1]).alias("date"))
        for path in files
    ]
    return pl.concat(frames) if frames else pl.DataFrame()


def check_folder(out: Path, model: Model) -> None:
    """The properties that hold after every step.

    (a) Money is conserved. For every batch B (the statement published for payment date D_B,
    of month M_B) that is fresh, i.e. no month <= M_B was published after B was computed, and
    for every account:

        Σ payable_amount of the published months <= M_B
          = Σ ledger amounts (PAYMENT and FORFEIT) of payment dates <= D_B
          + Σ (order_amount + forfeit_amount) of the published, unreleased statements of
            payment dates <= D_B (B's own included while it is proposed)
          + B's carried_amount (0 for an account without a row in B).

    Releasing a batch only moves its order and forfeit amounts from the proposed side to the
    ledger, so the identity holds from B's computation until a month it rests on is published
    again; a month published behind a released batch is in no batch until the next one is
    computed, which is why a batch that is not fresh is not checked.
    (b) No payment_id is in the ledger twice. (c) A released bank file, release record, ledger
    file and statement never change. (d) No order, forfeit or ledger amount is negative, and the
    bank file and each published statement are those of the run that proposed them.
    """
    registry = read_registry(OutputFolder(out))
    ledger = read_ledger(out)
    payable = {
        month: pl.read_parquet(out / "payouts" / f"earning_month={month}" / "part-0.parquet")
        for month in registry
    }
    statements = {pay_date: read_statement(out, pay_date) for pay_date in model.batches}

    # (b) and (d) of the ledger.
    if ledger.height:
        ids = ledger.get_column("payment_id").drop_nulls()
        assert ids.is_duplicated().sum() == 0, f"payment_id in the ledger twice: {ids.to_list()}"
        assert (ledger.get_column("amount") >= 0).all(), "a negative ledger amount"

    for pay_date, batch in model.batches.items():
        statement = statements[pay_date]
        own = pl.read_parquet(out / "runs" / batch.run_id / "statements.parquet")
        assert statement.equals(own.drop("payment_date")), f"statement {pay_date} is its run's"
        for column in ("order_amount", "forfeit_amount"):
            assert (statement.get_column(column) >= 0).all(), f"negative {column} in {pay_date}"

    # (c) Released files never change.
    for pay_date, files in model.released.items():
        assert released_files(out, pay_date) == files, f"the release of {pay_date} changed"

    # (a) Conservation, for each fresh batch.
    for pay_date, batch in model.batches.items():
        if not model.fresh(batch):
            event("a batch not fresh")
            continue
        event("a fresh batch checked")
        lhs = per_account(
            pl.concat([frame for month, frame in payable.items() if month <= batch.month]),
            "payable_amount",
        )
        rhs: dict[Key, Decimal] = defaultdict(Decimal)
        if ledger.height:
            for key, value in per_account(
                ledger.filter(pl.col("date") <= pay_date), "amount"
            ).items():
                rhs[key] += value
        for other, frame in statements.items():
            if other <= pay_date and other not in model.released:
                for key, value in per_account(
                    frame.with_columns(total=pl.col("order_amount") + pl.col("forfeit_amount")),
                    "total",
                ).items():
                    rhs[key] += value
        for key, value in per_account(statements[pay_date], "carried_amount").items():
            rhs[key] += value
        accounts = set(lhs) | set(rhs)
        assert {k: lhs[k] for k in accounts} == {k: rhs[k] for k in accounts}, (
            f"money not conserved for the batch of {batch.month} ({pay_date})"
        )


def released_files(out: Path, pay_date: str) -> dict[str, str]:
    paths = [
        out / "releases" / pay_date / "payments.csv",
        out / "releases" / pay_date / "release.json",
        out / "ledger" / f"payment_date={pay_date}" / "part-0.parquet",
        out / "statements" / f"payment_date={pay_date}" / "part-0.parquet",
    ]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()}


AMOUNT_TEXT = {"USD": re.compile(r"[1-9]\d*\.\d\d"), "JPY": re.compile(r"[1-9]\d*")}


def check_bank_file(path: Path) -> None:
    """Only PAY rows, positive amounts, with the currency's minor digits."""
    orders = pl.read_csv(path, infer_schema=False)
    for currency, amount in orders.select("currency", "amount").iter_rows():
        assert AMOUNT_TEXT[currency].fullmatch(amount), f"{currency} amount {amount!r}"


def apply(step: int, operation: tuple, inputs: Path, out: Path, amounts: Amounts, model: Model):
    """Do one operation; a refusal must leave the folder as it was."""
    before = folder_bytes(out)
    kind, month = operation[0], operation[1]
    if month is None:
        waiting = [m for m, s in batch_states(OutputFolder(out)).items() if s.state != "released"]
        month = waiting[0] if waiting else MONTHS[0]
    try:
        if kind == "release":
            done = release(out, month, "Megan Bowen")
            event(f"release: {done.status}")
            if done.status == "released":
                batch = model.batches[done.payment_date]
                assert batch.month == month
                bank = out / "releases" / done.payment_date / "payments.csv"
                assert (
                    bank.read_bytes() == (out / "runs" / batch.run_id / "payments.csv").read_bytes()
                )
                model.released[done.payment_date] = released_files(out, done.payment_date)
            else:
                assert folder_bytes(out) == before
            return
        reason = None
        if kind == "rerun":
            key, amount = operation[2]
            amounts[(key, month)] = amount
            payment_inputs.write_earnings(inputs, amounts)
            reason = f"{key} {month} corrected to {amount}"
        elif operation[2]:
            reason = "rerun"
        outcome = run_month(
            RunOptions(month=month, input_dir=inputs, output_dir=out, reason=reason)
        )
    except Refused:
        event(f"{kind} refused")
        assert folder_bytes(out) == before, f"a refused {kind} of {month} changed the folder"
        return
    if outcome.status != "published":
        assert folder_bytes(out) == before
        return
    model.published_at[month] = step
    event(f"{kind}: batch {outcome.manifest.payments.batch}")
    for status in pl.read_parquet(outcome.run_dir / "statements.parquet").get_column("status"):
        event(f"status {status}")
    check_bank_file(outcome.run_dir / "payments.csv")
    if outcome.manifest.payments.batch == "proposed":
        model.batches[outcome.manifest.payment_date] = Batch(outcome.run_id, month, step)
        assert outcome.manifest.payment_date not in model.released


TAMPERINGS = ("delete", "change", "copy beside", "symlink", "hard link")
tamperings = st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from(TAMPERINGS))


def tamper(out: Path, choice: tuple[int, str], spare: Path) -> Path | None:
    """Tamper with one file under ledger/ or releases/ (chosen by index), one way; the file."""
    files = sorted(
        path for top in ("ledger", "releases") for path in (out / top).rglob("*") if path.is_file()
    )
    if not files:
        return None
    index, how = choice
    path = files[index % len(files)]
    data = path.read_bytes()
    if how == "delete":
        path.unlink()
    elif how == "change":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif how == "copy beside":
        path.with_name(f"copy-{path.name}").write_bytes(data)
    elif how == "symlink":
        spare.write_bytes(data)  # the same bytes, but not the file the release wrote
        path.unlink()
        path.symlink_to(spare)
    else:
        os.link(path, spare)
    return path


def check_tampering_is_detected(inputs: Path, out: Path, choice: tuple[int, str]) -> None:
    """Any one file under ledger/ or releases/ changed in any way stops every command that
    reads them, naming the file, and changes nothing (docs/payments.md, the release chain)."""
    path = tamper(out, choice, out.parent / "spare")
    if path is None:
        return
    event(f"tampered: {choice[1]}")
    before = folder_bytes(out)
    with pytest.raises(ChainBroken) as broken:
        batch_states(OutputFolder(out))
    assert path.parent.name in str(broken.value)
    for month in MONTHS:
        with pytest.raises(ChainBroken):
            run_month(
                RunOptions(month=month, input_dir=inputs, output_dir=out, reason="after tampering")
            )
    assert folder_bytes(out) == before


@pytest.mark.slow  # about a minute: each example runs and releases months for real
@settings(max_examples=max(25, settings.default.max_examples // 8))
@given(first=first_amounts, sequence=sequences, choice=tamperings)
def test_money_is_conserved_and_nothing_is_paid_twice(
    first: Amounts, sequence: list, choice: tuple[int, str]
) -> None:
    """After every step, per account and for every batch B not made stale since computed:
    Σ payable of the published months <= M_B = Σ ledger (payments and forfeits) up to B's
    payment date + Σ (order + forfeit) of the unreleased published batches up to it + B's
    carried amount; no payment_id twice in the ledger; released files never change; no
    negative order, forfeit or ledger amount; a refusal changes nothing (see `check_folder`)."""
    with tempfile.TemporaryDirectory() as temporary:
        inputs = payment_inputs.write_inputs(Path(temporary) / "in", dict(first))
        out = Path(temporary) / "out"
        out.mkdir()
        amounts, model = dict(first), Model()
        for step, operation in enumerate(sequence, start=1):
            apply(step, operation, inputs, out, amounts, model)
            check_folder(out, model)
        check_tampering_is_detected(inputs, out, choice)
