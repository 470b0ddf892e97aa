"""The `coop-payouts` command line, stopping at a chosen moment to wait for a signal (for
test_signals.py).

Usage: python signal_runner.py POINT ARGS...: runs `coop-payouts ARGS...` and, when it reaches
POINT, prints PAUSED on stderr and sleeps. POINT is one of: computing (the rules are being
applied), publishing (between the month's two file replacements: the journal is written, the
registry not yet), committed (the registry names the new run, its backups are not yet dropped),
artifacts (the publish is done, the flow writes its artifacts), staged (a release's record is
staged, its journal not yet written), released (a release's journal is written, nothing is in
place yet), listing (history has settled the folder and lists the runs).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

PAUSED: list[bool] = []


def pause() -> None:
    """Once: the run's clean-up after the signal passes the same point again."""
    if PAUSED:
        return
    PAUSED.append(True)
    print("PAUSED", file=sys.stderr, flush=True)
    time.sleep(120)


def main() -> None:
    point, args = sys.argv[1], sys.argv[2:]
    # First, as the console script does: it sets Prefect's environment before Prefect starts.
    from flows.cli import main as cli

    # isort: split
    from flows import files, orchestration
    from flows import folder as output_folder
    from flows.month import progress

    if point == "computing":

        class PauseAt(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.getMessage() == "applying the rules":
                    pause()

        progress.addHandler(PauseAt())

    if point == "publishing":
        real_replace = os.replace

        def replace_then_pause(src: Any, dst: Any) -> None:
            real_replace(src, dst)
            if Path(dst).name == output_folder.PART:
                pause()

        output_folder.os.replace = replace_then_pause  # type: ignore[assignment]

    if point == "committed":
        real_finish = output_folder._finish

        def pause_then_finish(folder: Any, journal: Any) -> None:
            pause()
            real_finish(folder, journal)

        output_folder._finish = pause_then_finish  # type: ignore[assignment]

    if point == "artifacts":
        real_artifacts = orchestration.publish_artifacts

        def pause_then_publish(outcome: Any) -> None:
            pause()
            real_artifacts(outcome)

        orchestration.publish_artifacts = pause_then_publish  # type: ignore[assignment]

    if point == "listing":
        real_list = output_folder.list_runs

        def pause_then_list(folder: Any) -> list[dict]:
            pause()
            return real_list(folder)

        output_folder.list_runs = pause_then_list  # type: ignore[assignment]

    if point in ("staged", "released"):
        real_write = files.write_bytes_atomic

        def write_then_pause(data: bytes, path: Path) -> str:
            digest = real_write(data, path)
            if point == "staged" and path.name == "release.json":
                pause()
            return digest

        real_rename = os.replace

        def pause_then_replace(src: Any, dst: Any) -> None:
            if point == "released" and "ledger" in Path(dst).parts:
                pause()
            real_rename(src, dst)

        os.replace = pause_then_replace  # type: ignore[assignment]

        files.write_bytes_atomic = write_then_pause  # type: ignore[assignment]

    sys.argv = ["coop-payouts", *args]
    sys.exit(cli())


if __name__ == "__main__":
    main()
