"""Settings of the whole test suite: the hypothesis budgets, registered and loaded once here,
the one Prefect test server of a session, and Prefect's events client stopped before each
hypothesis test (`pytest_runtest_setup`).

"ci" (the default: fixed, derandomized, fast) and "long" (2000 examples); select with the
environment: HYPOTHESIS_PROFILE=long pytest tests/test_properties.py
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One temporary Prefect server per test session (each costs seconds to start); yields
    its API URL so subprocess tests can point at it."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield PREFECT_API_URL.value()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a hypothesis test, stop Prefect's events client if a flow run of an earlier test
    started one in this process. Its websocket to the test server sends a keepalive ping at least
    every 20 s from a background thread, and each ping draws from the global `random`; hypothesis
    warns (a HypothesisDeprecationWarning, "Do not use the `random` module inside strategies")
    whenever the global `random` changes while it draws an example, so the warning came and went
    with the timing. A later flow run starts a new client."""
    events = sys.modules.get("prefect.events.worker")
    if events is not None and getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
        events.EventsWorker.drain_all()
