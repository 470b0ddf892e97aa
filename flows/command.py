"""The `coop-payouts` executable: Ctrl-C or SIGTERM while the command's modules load (most of a
second) ends it with one sentence and exit 130 or 143, as later (docs/operations.md, "Stopping
a command"), never with a traceback. Then the command line (`flows/cli.py`) takes over."""

from __future__ import annotations

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
    cli.main()
