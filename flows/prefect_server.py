"""Prefect's temporary server, started so that it dies with the process that started it
(docs/operations.md, "The schedule")."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

from prefect.settings import PREFECT_API_URL

# prctl(2) option: the signal a process gets when the thread that started it dies.
PR_SET_PDEATHSIG = 1


def _dies_with(parent: int) -> Callable[[], None] | None:
    """A preexec hook that makes the child get SIGTERM when `parent` dies, and puts it in a
    process group of its own (Linux only).

    Its own group: a Ctrl-C in the terminal signals the whole foreground group, and a server
    stopped at once would leave the interrupted run retrying its API calls for minutes instead
    of reporting its end (docs/operations.md, "Stopping a command"); the run stops the server as
    it exits, or the death signal does.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork

    def hook() -> None:
        os.setpgid(0, 0)
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before the hook ran
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def _popen_dying_with_us(hook: Callable[[], None]) -> Callable[..., subprocess.Popen[Any]]:
    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        # Prefect's own arguments, passed through: mypy cannot match them to an overload.
        return subprocess.Popen(*args, preexec_fn=hook, **kwargs)  # type: ignore[call-overload]

    return popen


def start_temporary_server() -> None:
    """With no PREFECT_API_URL, start Prefect's temporary server now, so that its process gets
    SIGTERM when this one dies, however it dies.

    Prefect stops its temporary server at a normal exit only (atexit); after a SIGKILL it kept
    running and listening. Prefect looks its server up by port in one registry, so the instance
    started here is the one every Prefect client of this process then uses. It is started from
    the main thread because the death signal follows the thread that started the child.
    """
    if PREFECT_API_URL.value():
        return
    # The server module takes seconds to import: only a run that starts the server pays it.
    from prefect.server.api import server as prefect_server

    class TemporaryServer(prefect_server.SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            hook = _dies_with(os.getpid())
            if hook is None:
                return super()._run_uvicorn_command()
            # Prefect builds the command and calls `subprocess.Popen` in its server module:
            # only that call gets the hook, and only for the time of the call.
            real_module = prefect_server.subprocess
            prefect_server.subprocess = types.SimpleNamespace(Popen=_popen_dying_with_us(hook))  # type: ignore[assignment]
            try:
                return super()._run_uvicorn_command()
            finally:
                prefect_server.subprocess = real_module

    TemporaryServer().start()
