"""What idempotency keys and rate limits add to a trigger, against a bare one.

    DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH=.:example_project \\
        .venv/bin/python benchmarks/triggers.py [--rounds 1000]

Times N whole HTTP triggers of a job that does nothing (the test client, the
view, the lock, the run record), first with no key and no limits (the
baseline), then with each feature on, and prints each against the baseline
measured in the same run. CRONHOOKS_TEST_DATABASE=postgres measures on
PostgreSQL instead of SQLite; the Redis case uses the Redis at REDIS_URL.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import django

NO_LIMITS = {"PER_JOB": None, "PER_IP": None, "AUTH_FAILURES": None}
# High enough never to refuse: what is measured is the counting.
COUNTING = {"PER_JOB": "100000000/m"}


def batch(size: int, call: Callable[[], object]) -> float:
    """Microseconds per call over one batch."""
    start = time.perf_counter()
    for _ in range(size):
        call()
    return (time.perf_counter() - start) / size * 1e6


def compare(
    rounds: int,
    case: tuple[dict[str, Any], Callable[[], object]],
    baseline: tuple[dict[str, Any], Callable[[], object]],
) -> tuple[float, float]:
    """Median microseconds per call of each, over ten interleaved batches.

    Each is ``(CRONHOOKS, call)``. Interleaved, so that a machine getting
    busier or a database file growing weighs on both alike.
    """
    from django.test.utils import override_settings

    size = max(rounds // 10, 1)
    for setting, call in (case, baseline):
        with override_settings(CRONHOOKS=setting):
            call()  # warm: the job registry is parsed again after a change
    timings: tuple[list[float], list[float]] = ([], [])
    for _ in range(10):
        for (setting, call), times in zip((case, baseline), timings, strict=True):
            with override_settings(CRONHOOKS=setting):
                call()
                times.append(batch(size, call))
    medians = [statistics.median(times) for times in timings]
    return medians[0], medians[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000)
    rounds = parser.parse_args().rounds

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from django.conf import settings
    from django.core.cache import caches
    from django.test import Client
    from django.test.utils import (
        override_settings,
        setup_databases,
        setup_test_environment,
        teardown_databases,
    )

    from cronhooks.testing import trigger
    from tests.settings import CACHES

    setup_test_environment()
    databases = setup_databases(
        verbosity=0, interactive=False, aliases=dict.fromkeys(("default",))
    )
    client = Client()
    keys: Iterator[int] = itertools.count()
    prefix = f"bench-{uuid.uuid4().hex}"
    redis_cache = dict(cast("dict[str, Any]", CACHES["redis"]))
    redis_cache["KEY_PREFIX"] = prefix

    def cronhooks(**extra: Any) -> dict[str, Any]:
        base: dict[str, Any] = settings.CRONHOOKS
        return {**base, "RATE_LIMITS": NO_LIMITS, **extra}

    def ran(headers: dict[str, str] | None = None) -> None:
        # A refused trigger would be cheaper and flatter the figures.
        response = trigger(client, "ping", headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"trigger refused: {response.json()}")

    def bare() -> None:
        ran()

    def fresh_key() -> None:
        ran({"Idempotency-Key": f"{prefix}-{next(keys)}"})

    def replayed_key() -> None:
        ran({"Idempotency-Key": f"{prefix}-replayed"})

    cases: list[tuple[str, dict[str, Any], Callable[[], None]]] = [
        ("Idempotency-Key, first use", {}, fresh_key),
        ("Idempotency-Key, replay", {}, replayed_key),
        ("rate limits, LocMemCache", {"RATE_LIMITS": COUNTING}, bare),
        (
            "rate limits, Redis",
            {"RATE_LIMITS": {**COUNTING, "CACHE": "bench-redis"}},
            bare,
        ),
    ]
    try:
        with override_settings(
            CRONHOOKS=cronhooks(),
            CACHES={**settings.CACHES, "bench-redis": redis_cache},
        ):
            try:
                run_cases(rounds, bare, cases, cronhooks)
            finally:
                # Only this run's keys: the cache's KEY_PREFIX is in the pattern.
                caches["bench-redis"].delete_pattern("*")  # type: ignore[attr-defined]
    finally:
        teardown_databases(databases, verbosity=0)


def run_cases(
    rounds: int,
    bare: Callable[[], None],
    cases: list[tuple[str, dict[str, Any], Callable[[], None]]],
    cronhooks: Callable[..., dict[str, Any]],
) -> None:
    print(f"{'trigger':30} {'per trigger':>12} {'baseline':>10} {'ratio':>6}")
    for label, extra, call in cases:
        # The bare trigger is measured beside each case.
        cost, base = compare(rounds, (cronhooks(**extra), call), (cronhooks(), bare))
        print(f"{label:30} {cost:>9.0f} us {base:>7.0f} us {cost / base:>5.2f}x")


if __name__ == "__main__":
    main()
