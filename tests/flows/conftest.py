"""Fixtures of the flows tests: one Prefect test server for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One temporary Prefect server per test session (each costs seconds to start); yields
    its API URL so subprocess tests can point at it."""
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield PREFECT_API_URL.value()


@pytest.fixture
def no_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests of commands that must never reach Prefect (check, history, release, the
    refusals judged before a run starts): reaching it fails the test."""
    from flows import orchestration, prefect_server

    def reached(*args: object, **kwargs: object) -> None:
        raise AssertionError("Prefect was reached")

    monkeypatch.setattr(prefect_server, "start_temporary_server", reached)
    monkeypatch.setattr(orchestration, "monthly_payout", reached)
