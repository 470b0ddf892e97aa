"""Fixtures of the flows tests (the Prefect test server of the session is in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests of commands that must never reach Prefect (check, history, release, the
    refusals judged before a run starts): reaching it fails the test."""
    from flows import orchestration, prefect_server

    def reached(*args: object, **kwargs: object) -> None:
        raise AssertionError("Prefect was reached")

    monkeypatch.setattr(prefect_server, "start_temporary_server", reached)
    monkeypatch.setattr(orchestration, "monthly_payout", reached)
