"""Why a burst of refusals is counted on a record per server thread, not one.

    DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH=.:example_project \\
        .venv/bin/python benchmarks/refusals.py [--threads 16] [--seconds 5]

Records refusals from N threads at once for a few seconds each way, on the
test settings' PostgreSQL (a test database it creates and drops), and prints
refusals recorded per second:

- one record per refusal (``FOLD_REFUSALS: 0``): an INSERT each;
- one shared record: every thread counts on the same row, as folding a
  whole burst into one record would;
- a record per thread: what cronhooks does (runs/refusals.py).

Counting on one shared row queues every refusal behind the commit of the one
before it (PostgreSQL keeps the row locked until its WAL flush), so it is
bounded by the disk's flush rate whatever the number of threads.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable

import django


def per_second(threads: int, seconds: float, work: Callable[[int], object]) -> float:
    """Calls of ``work(thread number)`` per second, from every thread at once."""
    from django.db import connections

    done = [0] * threads
    stop = time.perf_counter() + seconds

    def loop(number: int) -> None:
        try:
            while time.perf_counter() < stop:
                work(number)
                done[number] += 1
        finally:
            connections.close_all()

    workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from django.db import router
    from django.test.utils import override_settings, setup_databases, teardown_databases
    from django.utils import timezone

    from cronhooks.models import JobRun
    from cronhooks.runs import refusals

    databases = setup_databases(
        verbosity=0, interactive=False, aliases=dict.fromkeys(("default", "postgres"))
    )

    def refused(number: int) -> JobRun:
        now = timezone.now()
        return JobRun(
            job="bench",
            status=JobRun.Status.REJECTED,
            source=JobRun.Source.HTTP,
            correlation_id=f"bench-{number}",
            reason="already_running",
            started_at=now,
            finished_at=now,
        )

    try:
        with override_settings(DATABASE_ROUTERS=["benchmarks.refusals.ToPostgres"]):
            alias = router.db_for_write(JobRun)
            shared = refused(0)
            shared.save(using=alias)
            own = [refused(n) for n in range(args.threads)]
            JobRun.objects.using(alias).bulk_create(own)
            cases: dict[str, Callable[[int], object]] = {
                "a record per refusal": lambda n: refused(n).save(using=alias),
                "one shared record": lambda n: refusals._counted(
                    alias, shared.id, timezone.now()
                ),
                "a record per thread": lambda n: refusals._counted(
                    alias, own[n].id, timezone.now()
                ),
            }
            print(f"{args.threads} threads, {args.seconds:g} s each, PostgreSQL")
            for label, work in cases.items():
                rate = per_second(args.threads, args.seconds, work)
                print(f"{label:24} {rate:8.0f} refusals/s")
    finally:
        teardown_databases(databases, verbosity=0)


class ToPostgres:
    """Every model on the test settings' PostgreSQL database."""

    def db_for_write(self, model: object, **hints: object) -> str:
        return "postgres"

    db_for_read = db_for_write


if __name__ == "__main__":
    main()
