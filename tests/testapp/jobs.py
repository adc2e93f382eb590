from __future__ import annotations

import os
import sys
import time

from django.conf import settings

from cronhooks.context import current_run


def ping() -> str:
    return "pong"


def leak() -> None:
    token = settings.CRONHOOKS["TOKENS"][0]
    raise RuntimeError(f"upstream rejected Authorization: Bearer {token}")


def exit_with(code: str | None = None) -> None:
    """sys.exit() as commands call it: a number is an exit status."""
    sys.exit(int(code) if code is not None and code.isdigit() else code)


def interrupt() -> None:
    raise KeyboardInterrupt


def sleep_for(seconds: float = 0) -> str:
    time.sleep(seconds)
    return f"slept {seconds}"


def record_interval(path: str, seconds: float = 0.02) -> None:
    """Append "start end pid fencing_token" in nanoseconds of the system clock."""
    run = current_run()
    start = time.time_ns()
    time.sleep(seconds)
    end = time.time_ns()
    fence = run.fencing_token if run else None
    # O_APPEND writes of one short line are atomic across processes.
    with open(path, "a") as file:
        file.write(f"{start} {end} {os.getpid()} {fence}\n")


def nul() -> str:
    return "a\x00b \ud800"


def describe_run() -> str:
    """What a job sees of its own run, for the tests to read back."""
    run = current_run()
    assert run is not None
    return f"fencing_token={run.fencing_token} lock_lost={run.lock_lost}"
