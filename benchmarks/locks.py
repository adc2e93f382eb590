"""How much a lock costs a run: acquire + release per backend, against a baseline.

    DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH=.:example_project \\
        .venv/bin/python benchmarks/locks.py [--rounds 2000]

For each backend it times N acquire+release pairs and, in the same run, N
round trips of the cheapest call to the same server (SELECT 1, PING), and
prints both and their ratio: the lock's cost in round trips. It uses the test
settings' databases (a scratch SQLite file and PostgreSQL database it creates
and drops) and the Redis at REDIS_URL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable

import django


def timed(rounds: int, call: Callable[[], object]) -> float:
    """Median microseconds per call over five batches."""
    batches = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds // 5):
            call()
        batches.append((time.perf_counter() - start) / (rounds // 5) * 1e6)
    return statistics.median(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from django.db import connections
    from django.test.utils import setup_databases, teardown_databases

    from cronhooks.locks.base import LockBackend
    from cronhooks.locks.database import DatabaseLockBackend
    from cronhooks.locks.redis import RedisLockBackend
    from tests.settings import REDIS_URL

    databases = setup_databases(
        verbosity=0, interactive=False, aliases=dict.fromkeys(("default", "postgres"))
    )
    try:
        cases: list[tuple[str, LockBackend, Callable[[], object]]] = []
        for alias, label in (
            ("default", "database lease, SQLite"),
            ("postgres", "database lease, PostgreSQL"),
        ):

            def select_one(alias: str = alias) -> None:
                with connections[alias].cursor() as cursor:
                    cursor.execute("SELECT 1")

            cases.append((label, DatabaseLockBackend(DATABASE=alias), select_one))
        redis_backend = RedisLockBackend(
            URL=REDIS_URL, KEY_PREFIX=f"bench-{uuid.uuid4().hex}"
        )
        cases.append(("Redis", redis_backend, redis_backend.client.ping))

        print(f"{'backend':28} {'acquire+release':>16} {'baseline':>10} {'ratio':>6}")
        for label, backend, baseline in cases:

            def cycle(backend: LockBackend = backend) -> None:
                backend.release(backend.acquire("bench", "run", ttl=60))

            cycle()  # warm connections and scripts
            lock_us = timed(rounds, cycle)
            base_us = timed(rounds, baseline)
            ratio = lock_us / base_us
            print(f"{label:28} {lock_us:13.0f} us {base_us:7.0f} us {ratio:6.1f}x")
        redis_backend.close()
    finally:
        teardown_databases(databases, verbosity=0)


if __name__ == "__main__":
    main()
