from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import requests
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


def flaky(path: str, failures: int = 1) -> str:
    """Fail the first ``failures`` times it runs (counted in a file), then succeed."""
    with open(path, "a+") as file:
        file.seek(0)
        attempt = len(file.read()) + 1
        file.write("x")
    if attempt <= failures:
        raise RuntimeError(f"attempt {attempt} fails on purpose")
    return f"attempt {attempt} succeeded"


def ignore_time_limit(seconds: float = 30) -> None:
    """Sleep with SIGALRM blocked, as C code deaf to signals would."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(seconds)


# What a test has a job do while it runs (e.g. cut its database away).
DURING_RUN: list[Callable[[], object]] = []


def run_hooks() -> str:
    for hook in DURING_RUN:
        hook()
    return "hooks ran"


# These jobs as CRONHOOKS["JOBS"] entries, for the tests to build on:
# {**FLAKY, "retries": 2}.
PATH_PARAM = {"type": "str", "max_length": 500, "required": True}
SLEEPER: dict[str, Any] = {
    "callable": "tests.testapp.jobs.sleep_for",
    "params": {"seconds": {"type": "float", "min": 0, "max": 60}},
}
FLAKY: dict[str, Any] = {
    "callable": "tests.testapp.jobs.flaky",
    "params": {"path": PATH_PARAM, "failures": {"type": "int", "min": 0, "max": 5}},
    "background": True,
}
INTERVAL: dict[str, Any] = {
    "callable": "tests.testapp.jobs.record_interval",
    "params": {
        "path": PATH_PARAM,
        "seconds": {"type": "float", "min": 0, "max": 60},
    },
    "background": True,
}


def post_hook() -> str:
    """Post to the URL in settings.JOB_HOOK_URL, as a job notifying a service
    would: requests names the URL when it cannot reach it."""
    requests.post(_hook_url(), json={"text": "done"}, timeout=5)
    return "posted"


def describe_hook() -> str:
    return f"would post to {_hook_url()}"


def _hook_url() -> str:
    # Set by the tests, not in tests.settings: django-stubs knows no such name.
    url: str = getattr(settings, "JOB_HOOK_URL")  # noqa: B009
    return url


def leak_signing_secret() -> None:
    [entry] = [
        entry
        for entry in settings.CRONHOOKS["AUTHENTICATORS"]
        if entry["BACKEND"].endswith("SignatureAuthenticator")
    ]
    secret = entry["OPTIONS"]["SECRETS"][0]
    raise RuntimeError(f"upstream rejected X-Signing-Secret: {secret}")


def quote_sentry_dsn() -> None:
    """Fail quoting the DSN, as a job whose own Sentry call failed might."""
    import sentry_sdk

    raise RuntimeError(f"could not report to {sentry_sdk.get_client().dsn}")
