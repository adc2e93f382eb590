"""One run of a job at a time, proven with real processes, threads and servers.

Each test runs against the database lease on the default database, on
PostgreSQL, and against Redis (see the ``locks`` fixture).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.utils import timezone

from cronhooks.locks import get_backend
from cronhooks.locks.database import DatabaseLockBackend
from cronhooks.locks.redis import RedisLockBackend
from cronhooks.models import JobLock, JobRun
from cronhooks.responses import outcome_status
from cronhooks.runs import Outcome, Trigger, run_job
from cronhooks.testing import trigger
from tests.conftest import JsonLines
from tests.servers import RedisServer
from tests.workers import results, start_together, start_worker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def fire(job: str, **params: object) -> Outcome:
    return run_job(
        Trigger(job=job, source=JobRun.Source.CLI, correlation_id="t", params=params)
    )


class InBackground:
    """run_job in a thread, as a second app instance would run it."""

    def __init__(self, job: str, **params: object) -> None:
        self.outcome: Outcome | None = None
        self._thread = threading.Thread(target=self._run, args=(job, params))
        self._thread.start()

    def _run(self, job: str, params: dict[str, object]) -> None:
        try:
            self.outcome = fire(job, **params)
        finally:
            connections.close_all()

    def join(self) -> Outcome:
        self._thread.join(timeout=60)
        assert self.outcome is not None
        return self.outcome


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def running(job: str) -> JobRun | None:
    return JobRun.objects.filter(job=job, status="running").first()


def kill_9(worker: subprocess.Popen[str]) -> None:
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert worker.stdout is not None
    worker.stdout.close()


def read_intervals(path: Path) -> list[tuple[int, int, int, int]]:
    rows = [line.split() for line in path.read_text().splitlines()]
    return sorted((int(a), int(b), int(pid), int(fence)) for a, b, pid, fence in rows)


def test_many_processes_firing_one_job_never_overlap(
    locks: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "intervals"
    params = {"path": str(path), "seconds": 0.03}

    workers = start_together(locks, 4, "interval", 20, params, tmp_path / "barrier")
    codes = [line["code"] for worker in workers for line in results(worker)]

    intervals = read_intervals(path)
    assert sorted(set(codes)) == [200, 409]  # nothing else: no 503, no 500
    assert len(intervals) == codes.count(200)
    for (_, end, _, _), (start, _, _, _) in zip(intervals, intervals[1:], strict=False):
        assert start >= end, "two runs of one job overlapped"
    assert len({pid for _, _, pid, _ in intervals}) > 1


def test_fencing_tokens_strictly_increase_across_processes(
    locks: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "intervals"
    params = {"path": str(path), "seconds": 0.01}

    workers = start_together(locks, 3, "interval", 15, params, tmp_path / "barrier")
    for worker in workers:
        results(worker)

    fences = [fence for _, _, _, fence in read_intervals(path)]
    assert len(fences) > 3
    assert fences == sorted(set(fences)), "fences must grow in the order of runs"
    recorded = JobRun.objects.filter(job="interval", status="succeeded")
    recorded_fences = [run.fencing_token or 0 for run in recorded]
    assert sorted(recorded_fences) == fences


def test_a_job_running_three_times_its_ttl_keeps_its_lock(
    locks: dict[str, Any],
) -> None:
    long_run = InBackground("sleepy", seconds=3.6)  # lock_ttl is 1 s
    wait_for(lambda: running("sleepy") is not None)
    holder = running("sleepy")
    assert holder is not None

    refusals = []
    for moment in (1.3, 2.2, 3.0):
        time.sleep(max(0.0, moment - (time.monotonic() - holder_start(holder))))
        refusals.append(fire("sleepy", seconds=0))

    first = long_run.join()
    assert first.run.status == "succeeded"
    assert first.run.lock_lost is False
    for refusal in refusals:
        assert outcome_status(refusal) == 409
        assert refusal.rejection is not None
        assert refusal.rejection.details["run_id"] == str(holder.id)
    assert outcome_status(fire("sleepy", seconds=0)) == 200


def holder_start(run: JobRun) -> float:
    """The run's start on the monotonic clock, near enough for pacing."""
    return time.monotonic() - (time.time() - run.started_at.timestamp())


def test_a_second_http_trigger_gets_409_saying_who_holds_the_lock(
    locks: dict[str, Any], client: Client
) -> None:
    long_run = InBackground("sleepy", seconds=1.5)
    wait_for(lambda: running("sleepy") is not None)
    holder = running("sleepy")
    assert holder is not None

    response = trigger(client, "sleepy", query={"seconds": "0"})

    body = response.json()
    assert response.status_code == 409
    assert body["status"] == "rejected"
    assert body["error"]["code"] == "already_running"
    assert body["error"]["details"]["run_id"] == str(holder.id)
    assert body["error"]["details"]["since"]
    assert long_run.join().run.status == "succeeded"
    refused = JobRun.objects.get(reason="already_running")
    assert refused.status == "rejected"


def steal_lock(job: str) -> None:
    """Overwrite the job's lock as another holder would, in the backend itself."""
    backend = get_backend()
    if isinstance(backend, RedisLockBackend):
        backend.client.set(f"{backend.prefix}:lock:{job}", "intruder", px=60_000)
    else:
        assert isinstance(backend, DatabaseLockBackend)
        JobLock.objects.using(backend.alias).filter(job=job).update(
            owner="intruder", expires_at=timezone.now() + timedelta(minutes=1)
        )


def test_an_overwritten_lock_is_detected_and_the_run_flagged(
    locks: dict[str, Any], json_lines: JsonLines
) -> None:
    long_run = InBackground("sleepy", seconds=1.5)
    wait_for(lambda: running("sleepy") is not None)

    steal_lock("sleepy")
    outcome = long_run.join()

    assert outcome.run.status == "succeeded"  # the job itself finished
    assert outcome.run.lock_lost is True
    outcome.run.refresh_from_db()
    assert outcome.run.lock_lost is True
    assert any(line["message"] == "lock_lost" for line in json_lines())
    # The flagged holder did not free the intruder's lock on its way out.
    assert outcome_status(fire("sleepy", seconds=0)) == 409


def test_a_killed_holder_frees_its_lock_after_the_ttl_and_is_marked_abandoned(
    locks: dict[str, Any],
) -> None:
    worker = start_worker(locks, "held", 1, {"seconds": 30})  # lock_ttl is 5 s
    wait_for(lambda: running("held") is not None, timeout=30)
    orphan = running("held")
    assert orphan is not None

    kill_9(worker)
    killed_at = time.monotonic()

    assert outcome_status(fire("held", seconds=0)) == 409
    wait_for(lambda: outcome_status(fire("held", seconds=0)) == 200, timeout=15)
    assert time.monotonic() - killed_at < 5 + 3

    orphan.refresh_from_db()
    assert orphan.status == "abandoned"
    assert orphan.finished_at is not None


def test_cleanup_marks_orphaned_runs_without_a_new_trigger(
    locks: dict[str, Any],
) -> None:
    worker = start_worker(locks, "held", 1, {"seconds": 30})
    wait_for(lambda: running("held") is not None, timeout=30)
    orphan = running("held")
    assert orphan is not None
    kill_9(worker)
    live = InBackground("sleepy", seconds=8.0)
    wait_for(lambda: running("sleepy") is not None)

    live_run = running("sleepy")
    assert live_run is not None

    call_command("cronhooks", "cleanup")  # the dead holder's lock is still held
    orphan.refresh_from_db()
    assert orphan.status == "running"

    wait_for(lambda: get_backend().holder("held") is None, timeout=15)
    call_command("cronhooks", "cleanup")

    orphan.refresh_from_db()
    live_run.refresh_from_db()
    assert orphan.status == "abandoned"
    if live.outcome is None:  # still running: cleanup left it alone
        assert live_run.status == "running"
    assert live.join().run.status == "succeeded"


# Redis itself going away: a throwaway server the test stops and starts.


@pytest.fixture
def redis_locks(redis_server: RedisServer, settings: Any) -> RedisServer:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {
            "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
            "OPTIONS": {"URL": redis_server.url, "SOCKET_TIMEOUT": 0.5},
        },
    }
    return redis_server


def test_redis_down_between_runs_refuses_with_503_and_recovers(
    redis_locks: RedisServer, client: Client, auth: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "intervals"
    assert trigger(client, "interval", query={"path": str(path)}).status_code == 200

    redis_locks.stop()
    refused = trigger(client, "interval", query={"path": str(path)})
    health = client.get("/health", headers=auth)

    assert refused.status_code == 503
    assert refused["Retry-After"] == "30"
    assert refused.json()["error"]["code"] == "lock_unavailable"
    assert len(read_intervals(path)) == 1, "nothing runs without a lock"
    assert JobRun.objects.filter(reason="lock_unavailable").count() == 1
    assert health.status_code == 503
    assert health.json()["checks"]["locks"] == {"ok": False, "detail": "unavailable"}

    redis_locks.start()
    assert trigger(client, "interval", query={"path": str(path)}).status_code == 200
    assert client.get("/health").status_code == 200
    assert len(read_intervals(path)) == 2


def test_redis_down_mid_run_lets_the_run_finish_flagged_and_recorded(
    redis_locks: RedisServer, json_lines: JsonLines
) -> None:
    long_run = InBackground("sleepy", seconds=1.5)
    wait_for(lambda: running("sleepy") is not None)

    redis_locks.stop()
    during = fire("sleepy", seconds=0)
    outcome = long_run.join()

    assert outcome_status(during) == 503
    assert outcome.run.status == "succeeded"
    assert outcome.run.lock_lost is True
    outcome.run.refresh_from_db()
    assert (outcome.run.status, outcome.run.lock_lost) == ("succeeded", True)
    events = {line["message"] for line in json_lines()}
    assert {"lock_renewal_failed", "lock_release_failed"} <= events

    redis_locks.start()
    assert outcome_status(fire("sleepy", seconds=0)) == 200


def test_redis_killed_during_a_run_too_short_to_renew_still_flags_it_lock_lost(
    redis_locks: RedisServer, settings: Any
) -> None:
    # A one-hour TTL: nothing renews during this run, only its release finds
    # Redis gone, and a release that cannot be confirmed is a lost lock.
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {
            **settings.CRONHOOKS["JOBS"],
            "hourly-ttl": {
                "callable": "tests.testapp.jobs.sleep_for",
                "params": {"seconds": {"type": "float"}},
            },
        },
    }
    long_run = InBackground("hourly-ttl", seconds=1.0)
    wait_for(lambda: running("hourly-ttl") is not None)

    redis_locks.stop()
    outcome = long_run.join()

    assert (outcome.run.status, outcome.run.lock_lost) == ("succeeded", True)
    assert outcome.as_dict()["lock_lost"] is True
    outcome.run.refresh_from_db()
    assert outcome.run.lock_lost is True


def test_running_without_a_lock_needs_an_explicit_opt_in(
    redis_locks: RedisServer, settings: Any, json_lines: JsonLines
) -> None:
    redis_locks.stop()
    assert outcome_status(fire("sleepy", seconds=0)) == 503

    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {**settings.CRONHOOKS["LOCKS"], "FAIL_OPEN": True},
        "JOBS": {
            **settings.CRONHOOKS["JOBS"],
            "context": {"callable": "tests.testapp.jobs.describe_run"},
        },
    }
    outcome = fire("context")

    assert outcome_status(outcome) == 200
    assert outcome.run.lock_lost is True
    assert outcome.run.fencing_token is None
    assert "lock_lost=True" in outcome.run.output  # what current_run() said
    assert any(line["message"] == "running_without_lock" for line in json_lines())


def test_redis_lock_uses_the_django_redis_cache_connection(
    settings: Any, redis_url: str
) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "redis": {**settings.CACHES["redis"], "LOCATION": redis_url},
    }
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {
            "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
            "OPTIONS": {"CACHE": "redis", "KEY_PREFIX": "cronhooks-cache-test"},
        },
    }
    backend = get_backend()
    assert isinstance(backend, RedisLockBackend)

    lease = backend.acquire("job", "run-1", ttl=5)
    try:
        with redis.Redis.from_url(redis_url) as client:
            assert client.exists("cronhooks-cache-test:lock:job")
    finally:
        backend.release(lease)
