"""A real release that stops at a chosen moment and waits to be killed (for test_kill.py).

Usage: python kill_release_runner.py POINT OUTPUT MONTH. Prints PAUSED when it reaches POINT:
staged (the bank file, release record and ledger rows are staged, no journal yet), journal
(the journal is written, nothing renamed yet) or renamed (the ledger file is in place, the
release folder not yet).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from flows import files
from flows.folder import OutputFolder, read_registry
from flows.release import release_month

JOURNAL = "release-journal.json"


def pause() -> None:
    print("PAUSED", flush=True)
    time.sleep(120)


def main() -> None:
    point, output_dir, month = sys.argv[1:4]
    real_write = files.write_bytes_atomic
    real_replace = os.replace

    def write(data: bytes, path: Path) -> str:
        if point == "staged" and path.name == JOURNAL:
            pause()
        digest = real_write(data, path)
        if point == "journal" and path.name == JOURNAL:
            pause()
        return digest

    def replace(src, dst) -> None:
        real_replace(src, dst)
        if point == "renamed" and "ledger" in Path(dst).parts:
            pause()

    files.write_bytes_atomic = write  # type: ignore[assignment]
    os.replace = replace  # type: ignore[assignment]
    run_id = read_registry(OutputFolder(Path(output_dir)))[month].run_id
    release_month(Path(output_dir), month, "Megan Bowen", run_id=run_id)


if __name__ == "__main__":
    main()
