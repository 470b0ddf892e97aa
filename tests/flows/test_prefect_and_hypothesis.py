"""A hypothesis test that runs after an in-process flow run sees no other thread draw from the
global `random` while it draws its examples (tests/conftest.py, `pytest_runtest_setup`)."""

from __future__ import annotations

import random
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from flows.orchestration import monthly_payout
from tests.conftest import pytest_runtest_setup

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
# Prefect's events client pings its server at least every 20 s (its websocket's keepalive).
PING_SECONDS = 25


def test_no_thread_draws_from_the_global_random_once_a_hypothesis_test_starts(
    prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = tmp_path / "inputs"
    shutil.copytree(SAMPLE, inputs)
    state = monthly_payout(
        month="2026-04", input_dir=str(inputs), output_dir=str(tmp_path / "out"), return_state=True
    )
    assert state.is_completed()
    hypothesis_test = SimpleNamespace(obj=SimpleNamespace(is_hypothesis_test=True))
    pytest_runtest_setup(cast(pytest.Item, hypothesis_test))
    others: list[str] = []
    draw = random.getrandbits

    def watched(bits: int) -> Any:
        if threading.current_thread() is not threading.main_thread():
            others.append(threading.current_thread().name)
        return draw(bits)

    monkeypatch.setattr(random, "getrandbits", watched)
    time.sleep(PING_SECONDS)
    assert others == []
