"""A real month run that stops at a chosen moment and waits to be killed (for test_kill.py).

Usage: python kill_runner.py STAGE INPUT OUTPUT REASON. Prints PAUSED when it reaches STAGE:
reading, computing, writing, publishing (between the month's two file replacements) or
committed (the registry names the new run, its backups are not yet dropped).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from flows import files
from flows import folder as output_folder
from flows.month import RunOptions, progress
from flows.run import run_month


def pause() -> None:
    print("PAUSED", flush=True)
    time.sleep(120)


def main() -> None:
    stage, input_dir, output_dir, reason = sys.argv[1:5]

    class PauseAt(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            step = record.getMessage()
            if stage == "reading" and step.startswith("earnings.csv: "):
                pause()
            if stage == "computing" and step == "applying the rules":
                pause()

    progress.addHandler(PauseAt())

    if stage == "writing":
        real_write = files.write_parquet_atomic

        def write_then_pause(frame, path: Path) -> str:
            digest = real_write(frame, path)
            pause()
            return digest

        files.write_parquet_atomic = write_then_pause  # type: ignore[assignment]

    if stage == "publishing":
        real_replace = os.replace

        def replace_then_pause(src, dst) -> None:
            real_replace(src, dst)
            if Path(dst).name == output_folder.PART:
                pause()

        output_folder.os.replace = replace_then_pause  # type: ignore[assignment]

    if stage == "committed":
        real_finish = output_folder._finish

        def pause_then_finish(folder, journal) -> None:
            pause()
            real_finish(folder, journal)

        output_folder._finish = pause_then_finish  # type: ignore[assignment]

    run_month(
        RunOptions(
            month="2026-04", input_dir=Path(input_dir), output_dir=Path(output_dir), reason=reason
        )
    )


if __name__ == "__main__":
    main()
