"""Ctrl-C and SIGTERM: a command stops within seconds and says truthfully whether it published
(docs/operations.md, "Stopping a command").

The command line installs two handlers for SIGINT and SIGTERM (`install`):

- in the main thread, the first signal raises `Interrupted`, so the command unwinds as after a
  failure: an unfinished publish is rolled back, the lock is released, Prefect marks the flow
  run Crashed;
- a watcher thread sees every signal as it arrives, whoever handles it in Python (Prefect puts
  its own SIGTERM handler in place while a flow runs), even while the main thread is inside
  polars or waits on Prefect's API. If the command has not ended `GRACE_SECONDS` after the
  first signal, it prints the sentence and ends the process where it stands.

The command exits 128 plus the signal (130 for SIGINT, 143 for SIGTERM, as shells report it),
and after the signal its stderr carries the sentence only (unless --debug).

The sentence comes from what this process made final, recorded at each commit point
(`commit_point`): the registry write of a publish, the journal write of a release. Signals are
`held` across those points and the watcher waits for them, so a commit is either done and
recorded, or neither; each is one small file written and renamed.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Time for the orderly way out (roll back, unlock, report the flow run, stop the temporary
# server) before the process is ended where it stands; it took 0.9-2.5 s on the sample month.
GRACE_SECONDS = 8.0


class Interrupted(BaseException):
    """A SIGINT or SIGTERM. Not an `Exception`: no `except Exception` on the way (a command's,
    Prefect's for a task's failure) may turn it into an error with exit 1."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True)
class Commit:
    """Something this process made final: a month published, or a batch released."""

    kind: str  # "published" | "released"
    month: str
    run_id: str
    folder: Path


# What this process made final, in order; read by the sentence.
commits: list[Commit] = []
# Held while a commit is written and recorded: the process is never ended between the two.
_commit_lock = threading.RLock()
_received: list[int] = []
_raised: list[int] = []
_said = threading.Event()
# The command's stderr, kept for the sentence; and whether everything else is silenced then.
_stderr: list[int] = []
_silenced: list[bool] = []


def received() -> int | None:
    """The first SIGINT or SIGTERM this process received, if any."""
    return _received[0] if _received else None


@contextmanager
def commit_point(commit: Commit) -> Iterator[None]:
    """The write that makes `commit` final: recorded iff the block completes. Use it inside
    `held`, so no interrupt lands between the write and the record."""
    with _commit_lock:
        yield
        commits.append(commit)


@contextmanager
def held() -> Iterator[None]:
    """Signals that arrive inside are handled as the block ends, by the handlers that were in
    place: what the block does is done whole (a publish's renames and its registry write)."""
    if threading.current_thread() is not threading.main_thread():
        # Python handles signals in the main thread only: nothing lands here.
        yield
        return
    caught: list[int] = []
    previous = {}
    for signum in SIGNALS:
        handler = signal.getsignal(signum)
        if handler is not None:  # None: a handler not set from Python, left alone
            previous[signum] = signal.signal(signum, lambda number, _: caught.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)


def sentence(signum: int, command: str) -> str:
    """One sentence: which signal, and what was published or released before it, or nothing."""
    name = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name
    kind = "released" if command == "release" else "published"
    done = list(commits)
    if not done:
        return f"interrupted by {name}: nothing was {kind}"
    parts = [
        f"the batch of {c.month} (run {c.run_id})"
        if c.kind == "released"
        else f"{c.month} (run {c.run_id})"
        for c in done
    ]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    said = f"interrupted by {name} after {listed} {'was' if len(parts) == 1 else 'were'} {kind}"
    last = done[-1]
    if last.kind == "released" and (last.folder / ".coop" / "release-journal.json").exists():
        # The release is decided: the next command completes it (docs/payments.md).
        said += "; the next command of coop-payouts puts the rest of it in place"
    if command == "backfill":
        said += "; nothing else was published"
    return said


def install(command: str, grace: float = GRACE_SECONDS, debug: bool = False) -> None:
    """Handle SIGINT and SIGTERM in this process as the module says; from the main thread.
    Unless `debug`, stderr says nothing after a signal but the sentence: Prefect's clients
    complain there when its server stops first."""
    _stderr.append(os.dup(sys.stderr.fileno()))
    if not debug:
        _silenced.append(True)
    for signum in SIGNALS:
        signal.signal(signum, _raise_first)
    # Python's own C handler writes each signal's number here as it arrives, in any thread.
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    watcher = threading.Thread(
        target=_watch, args=(read_end, command, grace), name="coop-payouts-signals", daemon=True
    )
    watcher.start()
    # Registered before Prefect's own (which stop the temporary server), so it runs after them.
    atexit.register(_at_exit, command)


def stop_raising() -> None:
    """The command is ending: a signal from now on no longer unwinds it (an exception inside
    its exit handlers would print a traceback); the watcher still ends it."""
    _raised.append(0)


def _at_exit(command: str) -> None:
    """A signal that came as the command was ending: say so and exit with its code."""
    signum = received()
    if signum is not None and not _said.is_set():
        _end_now(command)


def announce(command: str) -> None:
    """Print the sentence on stderr, once, whoever (the command or the watcher) asks first."""
    signum = received() or signal.SIGINT
    with _commit_lock:
        if _said.is_set():
            return
        _said.set()
        line = f"coop-payouts: {sentence(signum, command)}\n"
        os.write(_stderr[0] if _stderr else sys.stderr.fileno(), line.encode("utf-8", "replace"))


def _raise_first(signum: int, frame: FrameType | None) -> None:
    """The main thread's handler: the first signal unwinds the command; later ones only wait
    for the watcher (unwinding twice would break the clean-up of the first)."""
    _note(signum)
    if not _raised:
        _raised.append(signum)
        raise Interrupted(signum)


def _note(signum: int) -> None:
    if _received:
        return
    _received.append(signum)
    if _silenced:
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, sys.stderr.fileno())
        os.close(quiet)


def _watch(read_end: int, command: str, grace: float) -> None:
    """From the first SIGINT or SIGTERM on, give the command `grace` seconds, then end it.
    A signal delivered again (Prefect re-sends SIGTERM to the process after its own handling;
    `held` re-raises what it held) does not shorten the grace."""
    while not _received:
        for number in os.read(read_end, 64):
            if number in SIGNALS:
                _note(number)
    time.sleep(grace)
    _end_now(command)


def _end_now(command: str, end: Callable[[int], None] = os._exit) -> None:
    """Print the sentence (unless the command did) and end the process where it stands; never
    between a commit's write and its record. A temporary Prefect server gets SIGTERM as the
    process ends (flows/prefect_server.py); an unfinished publish or release is settled by the
    next command."""
    with _commit_lock:
        announce(command)
        end(128 + (received() or signal.SIGINT))
