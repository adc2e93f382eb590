"""What a background run costs: its 202 answer, and its runs per second.

    DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH=.:example_project \\
        .venv/bin/python benchmarks/background.py [--rounds 500] [--runs 200] \\
        [--json PATH]

1. The answer. Times each of N whole HTTP triggers (the test client, the view,
   the run record, the enqueue) of a background no-op job answered 202, on the
   database task backend and on RQ, beside the inline trigger of the same
   no-op job answered 200 (the baseline), in interleaved batches; prints the
   p50 and p99 of each and their ratios to the baseline's.
2. The worker. Queues N background no-op runs, then starts one worker process
   (``db_worker --batch``, ``rqworker --burst``) that drains them, and reads
   its runs per second from the run records (first start to last finish, so
   the worker's start-up is not counted). The baseline, on the same engine in
   the same run: N bare no-op tasks (benchmarks/noop_task.py), timed from the
   engine's own records. Both are measured in alternating batches, each with
   a worker of its own; the medians are printed.

Every background trigger has a job of its own: a job has at most one queued or
running run, so a second trigger of it would be refused (409). The figures
come from a scratch test database (SQLite, or PostgreSQL with
CRONHOOKS_TEST_DATABASE=postgres) and a private redis-server on a free port.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import django

NO_LIMITS = {"PER_JOB": None, "PER_IP": None, "AUTH_FAILURES": None}
LOCKS = {"BACKEND": "cronhooks.locks.database.DatabaseLockBackend"}
NOOP = "tests.testapp.jobs.ping"
NOOP_TASK = "benchmarks.noop_task.noop"
ENGINES = ("database", "rq")
ENGINE_LABELS = {"database": "database (django-tasks-db)", "rq": "RQ (django-tasks-rq)"}
# Batches of the answer measurement, interleaved case by case.
ANSWER_BATCHES = 10
# Batches of the worker measurement, alternating cronhooks and bare tasks.
WORKER_BATCHES = 4
# Linux refuses an environment string longer than 128 KiB (MAX_ARG_STRLEN),
# and the worker's jobs travel in one.
MAX_WORKER_SETTINGS = 120_000
SUCCESSFUL = "SUCCESSFUL"


def percentile(times: list[float], share: int) -> float:
    """The ``share``th percentile of ``times`` (1 to 99)."""
    return statistics.quantiles(times, n=100, method="inclusive")[share - 1]


def noop_jobs(prefix: str, count: int) -> dict[str, dict[str, Any]]:
    """``count`` background no-op jobs, ``<prefix>-0`` and on."""
    return {
        f"{prefix}-{number}": {"callable": NOOP, "background": True}
        for number in range(count)
    }


@dataclass
class AnswerCase:
    """One kind of trigger of the answer measurement, and its timings."""

    label: str
    key: str
    backend: str
    jobs: Iterator[str]
    status: int
    seconds: list[float] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500, help="triggers per case")
    parser.add_argument("--runs", type=int, default=200, help="runs per engine")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.rounds < ANSWER_BATCHES or args.runs < WORKER_BATCHES:
        parser.error(
            f"--rounds must be >= {ANSWER_BATCHES}, --runs >= {WORKER_BATCHES}"
        )
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed: the RQ cases need one.")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import (
        override_settings,
        setup_databases,
        setup_test_environment,
        teardown_databases,
        teardown_test_environment,
    )

    from tests.servers import RedisServer

    answer_size = args.rounds // ANSWER_BATCHES
    worker_size = args.runs // WORKER_BATCHES
    # One untimed warm-up trigger per case and batch, each with a job too.
    answer_jobs = {
        engine: noop_jobs(f"answer-{engine}", (answer_size + 1) * ANSWER_BATCHES)
        for engine in ENGINES
    }
    # Reused from batch to batch and engine to engine: each batch's runs have
    # all finished before the next batch queues its own.
    worker_jobs = noop_jobs("worker", worker_size)
    base: dict[str, Any] = settings.CRONHOOKS
    cronhooks = {
        **base,
        "JOBS": {
            **base["JOBS"],
            **answer_jobs["database"],
            **answer_jobs["rq"],
            **worker_jobs,
        },
        "RATE_LIMITS": NO_LIMITS,
        "LOCKS": LOCKS,
    }

    # Stopped from outside, it still cleans up after itself.
    signal.signal(signal.SIGTERM, stop)
    setup_test_environment()
    with ExitStack() as cleanup:
        cleanup.callback(teardown_test_environment)
        scratch = Path(cleanup.enter_context(tempfile.TemporaryDirectory()))
        redis_server = RedisServer(scratch)
        redis_server.start()
        cleanup.callback(redis_server.stop)
        databases = setup_databases(
            verbosity=0, interactive=False, aliases=dict.fromkeys(("default",))
        )
        cleanup.callback(teardown_databases, databases, verbosity=0)
        workers = Workers(scratch / "worker.log")
        # Registered last, so run first: no worker outlives its databases.
        cleanup.callback(workers.stop_all)
        cleanup.enter_context(
            override_settings(
                CRONHOOKS=cronhooks,
                RQ_QUEUES={"default": {"URL": redis_server.url, "DEFAULT_TIMEOUT": -1}},
            )
        )
        vendor = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[connection.vendor]
        print(
            f"cronhooks background runs on {vendor}, Django {django.__version__}, "
            f"{sys.platform}, {os.cpu_count()} CPUs"
        )
        cases = [
            AnswerCase(
                "inline no-op (baseline)",
                "inline",
                "default",
                itertools.repeat("ping"),
                200,
            ),
            *(
                AnswerCase(
                    f"202, {ENGINE_LABELS[engine]}",
                    engine,
                    engine,
                    iter(answer_jobs[engine]),
                    202,
                )
                for engine in ENGINES
            ),
        ]
        answers = measure_answers(cases, answer_size, cronhooks)
        print_answers(cases, answers, answer_size * ANSWER_BATCHES)
        throughput: dict[str, dict[str, Any]] = {}
        for engine in ENGINES:
            throughput[engine] = measure_worker(
                engine, worker_jobs, cronhooks, workers, redis_server.url
            )
        print_throughput(throughput, worker_size)

    if args.json:
        figures = {
            "store": vendor,
            "django": django.__version__,
            "rounds": answer_size * ANSWER_BATCHES,
            "runs": worker_size * WORKER_BATCHES,
            "answer": answers,
            "worker": throughput,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")


def stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# 1. The answer


def measure_answers(
    cases: list[AnswerCase], size: int, cronhooks: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """Per-request seconds of each case, over interleaved batches.

    Each batch starts with one untimed trigger under the case's settings: a
    change of ``CRONHOOKS`` parses the job registry again. The order of the
    cases turns from batch to batch, so none is always first after another.
    """
    from django.test import Client
    from django.test.utils import override_settings

    from cronhooks.testing import trigger

    client = Client()

    def send(case: AnswerCase) -> float:
        job = next(case.jobs)
        start = time.perf_counter()
        response = trigger(client, job)
        elapsed = time.perf_counter() - start
        # A refused trigger would be cheaper and flatter the figures.
        if response.status_code != case.status:
            raise SystemExit(
                f"{case.label}: {job} answered {response.status_code}, not "
                f"{case.status}: {response.content.decode()}"
            )
        return elapsed

    for number in range(ANSWER_BATCHES):
        turn = number % len(cases)
        for case in cases[turn:] + cases[:turn]:
            with override_settings(
                CRONHOOKS={**cronhooks, "TASK_BACKEND": case.backend}
            ):
                send(case)
                case.seconds += [send(case) for _ in range(size)]
    baseline = cases[0].seconds
    base_p50, base_p99 = percentile(baseline, 50), percentile(baseline, 99)
    figures = {}
    for case in cases:
        p50, p99 = percentile(case.seconds, 50), percentile(case.seconds, 99)
        figures[case.key] = {
            "p50_ms": p50 * 1e3,
            "p99_ms": p99 * 1e3,
            "p50_ratio": p50 / base_p50,
            "p99_ratio": p99 / base_p99,
        }
    return figures


def print_answers(
    cases: list[AnswerCase], figures: dict[str, dict[str, float]], count: int
) -> None:
    print()
    print(f"1. The answer: {count} HTTP triggers per case, in-process test client")
    print(f"{'trigger':36} {'p50':>9} {'p99':>9} {'p50 ratio':>10} {'p99 ratio':>10}")
    for case in cases:
        row = figures[case.key]
        print(
            f"{case.label:36} {row['p50_ms']:>6.2f} ms {row['p99_ms']:>6.2f} ms "
            f"{row['p50_ratio']:>9.2f}x {row['p99_ratio']:>9.2f}x"
        )


# 2. The worker


@dataclass(frozen=True)
class Drained:
    """One batch drained by one worker process."""

    count: int
    # Seconds from the first start to the last finish, in the records named.
    span: float
    # Seconds of the worker process, its start-up and exit included.
    wall: float
    # For a batch of cronhooks runs: the span in the engine's task records.
    engine_span: float | None = None

    @property
    def rate(self) -> float:
        return self.count / self.span


class Workers:
    """The worker processes started, each stopped (with its children) at the end."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.started: list[subprocess.Popen[bytes]] = []

    def drain(self, engine: str, env: dict[str, str], timeout: float) -> float:
        """Run one worker until its queue is empty; its wall time in seconds."""
        command = [sys.executable, "-m", "django"]
        if engine == "rq":
            command += ["rqworker", "default", "--job-class", "django_tasks_rq.Job"]
            command += ["--burst"]
        else:
            command += ["db_worker", "--backend", "database", "--interval", "0.1"]
            command += ["--no-startup-delay", "--no-reload", "--batch"]
        self.log.write_bytes(b"")
        start = time.perf_counter()
        with self.log.open("ab") as log:
            worker = subprocess.Popen(  # noqa: S603  (our own interpreter)
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(worker)
        try:
            code = worker.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SystemExit(
                f"the {engine} worker did not drain its queue in {timeout:.0f} s:\n"
                + self.tail()
            ) from None
        wall = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"the {engine} worker exited {code}:\n" + self.tail())
        return wall

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def stop_all(self) -> None:
        for worker in self.started:
            if worker.poll() is None:
                # RQ's work horse has a process group of its own.
                for pid in [worker.pid, *descendants(worker.pid)]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                worker.wait()


def descendants(pid: int) -> list[int]:
    """Every descendant of ``pid``, from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def measure_worker(
    engine: str,
    jobs: dict[str, dict[str, Any]],
    cronhooks: dict[str, Any],
    workers: Workers,
    redis_url: str,
) -> dict[str, Any]:
    """Runs per second of one worker: cronhooks runs, then bare tasks, by turns."""
    from django.test.utils import override_settings

    from tests.workers import worker_env

    overrides = {"TASK_BACKEND": engine, "JOBS": jobs, "RATE_LIMITS": NO_LIMITS}
    worker_settings = json.dumps(overrides)
    if len(worker_settings) > MAX_WORKER_SETTINGS:
        raise SystemExit("--runs is too large for the worker's environment.")
    env = worker_env(
        LOCKS,
        {
            "CRONHOOKS_WORKER_SETTINGS": worker_settings,
            "CRONHOOKS_TEST_RQ_URL": redis_url,
        },
    )
    timeout = 60 + len(jobs)
    runs: list[Drained] = []
    bare: list[Drained] = []
    with override_settings(CRONHOOKS={**cronhooks, "TASK_BACKEND": engine}):
        for number in range(WORKER_BATCHES):
            # By turns, and each first every other time.
            for kind in ("runs", "bare") if number % 2 == 0 else ("bare", "runs"):
                if kind == "runs":
                    runs.append(drain_runs(engine, list(jobs), workers, env, timeout))
                else:
                    bare.append(drain_bare(engine, len(jobs), workers, env, timeout))
    run_rate = statistics.median(batch.rate for batch in runs)
    bare_rate = statistics.median(batch.rate for batch in bare)
    return {
        "runs_per_s": run_rate,
        "runs_per_s_engine_records": statistics.median(
            batch.count / batch.engine_span for batch in runs if batch.engine_span
        ),
        "bare_tasks_per_s": bare_rate,
        "ratio": run_rate / bare_rate,
        "overhead_ms_per_run": (1 / run_rate - 1 / bare_rate) * 1e3,
        "runs_wall_s": statistics.median(batch.wall for batch in runs),
        "bare_wall_s": statistics.median(batch.wall for batch in bare),
        "runs_per_s_batches": [batch.rate for batch in runs],
        "bare_tasks_per_s_batches": [batch.rate for batch in bare],
    }


def empty_queues() -> None:
    """No run, task or RQ job left from before: each batch counts its own."""
    import django_rq
    from django_tasks_db.models import DBTaskResult

    from cronhooks.models import JobRun

    JobRun.objects.all().delete()
    DBTaskResult.objects.all().delete()
    # The private redis-server's (RQ_QUEUES points there).
    with django_rq.get_connection("default") as client:
        client.flushdb()


def drain_runs(
    engine: str,
    jobs: list[str],
    workers: Workers,
    env: dict[str, str],
    timeout: float,
) -> Drained:
    """Queue one background run of each job through the view, then drain them."""
    from django.test import Client

    from cronhooks.models import JobRun
    from cronhooks.testing import trigger

    empty_queues()
    client = Client()
    run_ids = []
    for job in jobs:
        response = trigger(client, job)
        if response.status_code != 202:
            raise SystemExit(
                f"{job} answered {response.status_code}, not 202: "
                f"{response.content.decode()}"
            )
        run_ids.append(response.json()["run_id"])
    wall = workers.drain(engine, env, timeout)
    records = list(
        JobRun.objects.filter(id__in=run_ids).values_list(
            "status", "started_at", "finished_at"
        )
    )
    statuses = {status for status, _, _ in records}
    if len(records) != len(jobs) or statuses != {JobRun.Status.SUCCEEDED}:
        raise SystemExit(
            f"{engine}: {len(records)} of {len(jobs)} runs recorded, statuses "
            f"{sorted(statuses)}:\n" + workers.tail()
        )
    # A succeeded run has finished.
    span = spanned([(start, end) for _, start, end in records if end is not None])
    return Drained(len(jobs), span, wall, spanned(engine_records(engine, len(jobs))))


def drain_bare(
    engine: str,
    count: int,
    workers: Workers,
    env: dict[str, str],
    timeout: float,
) -> Drained:
    """Queue ``count`` bare no-op tasks, then drain them."""
    from django.utils.module_loading import import_string

    empty_queues()
    # Imported by its path, as the worker imports it.
    task = import_string(NOOP_TASK)
    for _ in range(count):
        task.enqueue()
    wall = workers.drain(engine, env, timeout)
    return Drained(count, spanned(engine_records(engine, count)), wall)


def engine_records(engine: str, count: int) -> list[tuple[Any, Any]]:
    """(started, finished) of every task the engine ran since it was emptied;
    exits unless exactly ``count`` ran, all successfully."""
    if engine == "database":
        from django_tasks_db.models import DBTaskResult

        rows = list(
            DBTaskResult.objects.values_list("status", "started_at", "finished_at")
        )
        failed = [status for status, _, _ in rows if status != SUCCESSFUL]
        spans = [(start, end) for _, start, end in rows]
    else:
        import django_rq
        from rq.job import Job
        from rq.registry import FailedJobRegistry, FinishedJobRegistry

        queue = django_rq.get_queue("default")
        failed = FailedJobRegistry(queue=queue).get_job_ids()
        ids = FinishedJobRegistry(queue=queue).get_job_ids()
        jobs = Job.fetch_many(ids, connection=queue.connection)
        spans = [(job.started_at, job.ended_at) for job in jobs if job is not None]
    if failed or len(spans) != count:
        raise SystemExit(
            f"{engine}: {len(spans)} of {count} tasks finished, {len(failed)} failed"
        )
    return spans


def spanned(spans: list[tuple[datetime, datetime]]) -> float:
    """Seconds from the first start to the last finish."""
    first = min(start for start, _ in spans)
    last = max(end for _, end in spans)
    return (last - first).total_seconds()


def print_throughput(figures: dict[str, dict[str, Any]], count: int) -> None:
    print()
    print(
        f"2. The worker: batches of {count} no-op runs or bare tasks, one worker "
        f"process per batch, by turns; medians of {WORKER_BATCHES} batches each"
    )
    print(
        f"{'engine':27} {'runs/s':>7} {'(tasks)':>7} {'bare/s':>7} "
        f"{'runs/bare':>9} {'ms/run':>7} {'wall runs':>10} {'wall bare':>10}"
    )
    for engine, row in figures.items():
        print(
            f"{ENGINE_LABELS[engine]:27} {row['runs_per_s']:>7.1f} "
            f"{row['runs_per_s_engine_records']:>7.1f} "
            f"{row['bare_tasks_per_s']:>7.1f} {row['ratio']:>8.2f}x "
            f"{row['overhead_ms_per_run']:>+7.2f} "
            f"{row['runs_wall_s']:>8.2f} s {row['bare_wall_s']:>8.2f} s"
        )
    print(
        "runs/s: cronhooks runs, from the run records (first started_at to last "
        "finished_at);\n(tasks): the same runs from the engine's task records; "
        "bare/s: bare no-op tasks, from the\nengine's task records; ms/run: what "
        "cronhooks adds to each run; wall: the worker process\nfrom start to "
        "exit, its start-up included."
    )


if __name__ == "__main__":
    main()
