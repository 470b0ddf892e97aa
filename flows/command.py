"""The `coop-payouts` executable: Ctrl-C or SIGTERM while the command's modules load (most of a
second) ends it with one sentence and exit 130 or 143, as later (docs/operations.md, "Stopping
a command"), never with a traceback. Then the command line (`flows/cli.py`) takes over.

When the command is done, every object Python holds is frozen (`gc.freeze`): the collection
Python runs as it exits then skips them. Prefect's, pydantic's and polars' objects made that
collection 0.6-0.7 s of every command (docs/performance.md); everything the command writes is
written and closed before it returns."""

from __future__ import annotations

import gc
import os
import signal
from types import FrameType


def _stopped_while_starting(signum: int, frame: FrameType | None) -> None:
    """Nothing has been done yet: say so, and end at once."""
    name = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name
    os.write(2, f"coop-payouts: interrupted by {name} while starting: nothing was done\n".encode())
    os._exit(128 + signum)


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stopped_while_starting)
    from flows import cli

    # Python's own handlers again: the command installs its own (serve leaves them to Prefect).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        cli.main()
    finally:
        gc.freeze()
