"""cronhooks.runs.tasks: the worker's side of a background run, run in this
process (``run_queued`` is what the task calls): waiting for the lock of the
run before it, runs taken by another worker, a lock server or a queue that is
down when the worker needs it, and no tasks API at all."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from cronhooks.locks import Lease, get_backend
from cronhooks.models import JobRun
from cronhooks.runs import tasks
from cronhooks.runs.tasks import run_queued
from cronhooks.testing import trigger
from tests.conftest import JsonLines, PostgresProxy
from tests.servers import RedisServer
from tests.test_alerts import RecordingBackend
from tests.test_checks import check_error_codes
from tests.testapp.jobs import FLAKY, INTERVAL
from tests.testapp.locks import HOOKS

pytestmark = pytest.mark.django_db(transaction=True)

JOBS: dict[str, Any] = {
    "bg": {"callable": "tests.testapp.jobs.ping", "background": True},
    "interval": INTERVAL,
    "flaky": {**FLAKY, "retries": 1, "retry_delay": 0},
}


@pytest.fixture(autouse=True)
def _queued_only(settings: Any) -> Iterator[None]:
    """Triggers are queued on the database backend; this process runs them."""
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {**settings.CRONHOOKS["JOBS"], **JOBS},
        "ALERTS": {"recording": {"BACKEND": "tests.test_alerts.RecordingBackend"}},
        "TASK_BACKEND": "database",
    }
    RecordingBackend.received.clear()
    yield
    HOOKS.clear()


def queue(client: Client, job: str, **params: str) -> str:
    response = trigger(client, job, query=params)
    assert response.status_code == 202, response.content
    run_id: str = response.json()["run_id"]
    return run_id


def release(lease: Lease) -> None:
    """Free a lease from another thread, closing that thread's connection."""
    try:
        get_backend().release(lease)
    finally:
        connections.close_all()


def test_a_worker_waits_for_the_lock_the_run_before_it_is_about_to_free(
    client: Client,
) -> None:
    run_id = queue(client, "bg")
    lease = get_backend().acquire("bg", "the-run-before", ttl=30)
    threading.Timer(0.5, release, args=[lease]).start()
    started = time.monotonic()

    assert run_queued(run_id, {}) == "succeeded"
    assert time.monotonic() - started >= 0.4


def test_a_lock_held_past_the_wait_refuses_the_run(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "LOCK_WAIT", 0.3)
    run_id = queue(client, "bg")
    lease = get_backend().acquire("bg", "a-stray-holder", ttl=30)
    try:
        assert run_queued(run_id, {}) == "rejected"
    finally:
        get_backend().release(lease)

    run = JobRun.objects.get(id=run_id)
    assert (run.status, run.reason) == ("rejected", "already_running")
    assert RecordingBackend.received == []  # a refusal, not a failure


def test_a_run_delivered_to_two_workers_at_once_runs_once(
    client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "intervals"
    run_id = queue(client, "interval", path=str(path), seconds="0.3")
    params = {"path": str(path), "seconds": 0.3}
    outcomes: list[str] = []

    def work() -> None:
        try:
            outcomes.append(run_queued(run_id, params))
        finally:
            connections.close_all()

    # Both read the run while it is still queued, then wait for its lock.
    lease = get_backend().acquire("interval", "the-run-before", ttl=30)
    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    time.sleep(0.3)
    release(lease)
    for worker in workers:
        worker.join(30)

    # One ran it; the other found it taken once it had the lock.
    assert sorted(outcomes) == ["not_queued", "succeeded"]
    assert len(path.read_text().splitlines()) == 1


def test_a_worker_that_gives_up_on_the_lock_leaves_another_workers_run_alone(
    client: Client, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # B read the run while it was queued, then waited for its lock in vain
    # while A ran it: B must not record it refused under A's feet.
    monkeypatch.setattr(tasks, "LOCK_WAIT", 0.3)
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {"BACKEND": "tests.testapp.locks.HookedDatabaseLockBackend"},
    }
    path = tmp_path / "intervals"
    params = {"path": str(path), "seconds": 1.0}
    run_id = queue(client, "interval", path=str(path), seconds="1.0")
    outcomes: dict[str, str] = {}

    def work(name: str) -> None:
        try:
            outcomes[name] = run_queued(run_id, params)
        finally:
            connections.close_all()

    b = threading.Thread(target=work, args=["b"])

    def start_b_once() -> None:
        # A holds the lock, and has not yet marked the run running.
        HOOKS.pop("after_acquire")
        b.start()
        time.sleep(0.2)  # B reads the run: still queued

    HOOKS["after_acquire"] = start_b_once
    work("a")
    b.join(30)

    assert outcomes == {"a": "succeeded", "b": "not_queued"}
    run = JobRun.objects.get(id=run_id)
    assert (run.status, run.reason) == ("succeeded", "")
    assert len(path.read_text().splitlines()) == 1


def test_a_lock_server_down_fails_the_run_retries_it_and_alerts_the_last(
    client: Client, settings: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    run_id = queue(client, "flaky", path=str(tmp_path / "count"), failures="0")
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {
            "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
            "OPTIONS": {"URL": redis_server.url, "SOCKET_TIMEOUT": 0.5},
        },
        # The retry runs at once, in this process.
        "TASK_BACKEND": "default",
    }
    redis_server.stop()

    assert run_queued(run_id, {"path": str(tmp_path / "count")}) == "failed"

    runs = list(JobRun.objects.order_by("attempt"))
    assert [(run.status, run.reason, run.attempt) for run in runs] == [
        ("failed", "lock_unavailable", 1),
        ("failed", "lock_unavailable", 2),
    ]
    [alert] = RecordingBackend.received
    assert (alert.kind, alert.attempt) == ("failure", 2)
    assert not (tmp_path / "count").exists()  # the job itself never ran


def test_a_retry_the_queue_cannot_take_makes_the_failure_final(
    client: Client, settings: Any, tmp_path: Path, json_lines: JsonLines
) -> None:
    counter = str(tmp_path / "count")
    run_id = queue(client, "flaky", path=counter, failures="1")
    # Nothing listens where the RQ backend points (tests/settings.py).
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TASK_BACKEND": "rq"}

    assert run_queued(run_id, {"path": counter, "failures": 1}) == "failed"

    first, retry = JobRun.objects.order_by("attempt")
    assert (retry.status, retry.reason, retry.retry_of) == (
        "rejected",
        "queue_unavailable",
        first.id,
    )
    [alert] = RecordingBackend.received
    assert (alert.kind, alert.run_id) == ("failure", run_id)
    assert "run_retry_not_queued" in {line["message"] for line in json_lines()}


@pytest.mark.django_db(transaction=True, databases=["default", "postgres", "proxied"])
def test_a_history_lost_as_the_worker_takes_the_lock_leaves_the_run_unstarted(
    client: Client,
    settings: Any,
    proxied_history: PostgresProxy,
    json_lines: JsonLines,
) -> None:
    run_id = queue(client, "bg")
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {
            "BACKEND": "tests.testapp.locks.HookedDatabaseLockBackend",
            "OPTIONS": {"DATABASE": "default"},
        },
    }
    HOOKS["after_acquire"] = proxied_history.stop

    run_queued(run_id, {})

    assert get_backend().holder("bg") is None
    assert {"run_record_failed", "run_refused"} <= {
        line["message"] for line in json_lines()
    }
    HOOKS.clear()
    proxied_history.restart()
    # Still queued: the next worker to get it (or queue_timeout) decides.
    assert JobRun.objects.get(id=run_id).status == "queued"


def test_without_a_tasks_api_background_jobs_are_refused_and_checked(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if neither Django 6's django.tasks nor the backport were installed.
    monkeypatch.setitem(sys.modules, "django.tasks", None)
    monkeypatch.setitem(sys.modules, "django_tasks", None)

    response = trigger(client, "bg")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "tasks_unavailable"
    assert "django-cronhooks[tasks]" in response.json()["error"]["message"]
    assert "cronhooks.E025" in check_error_codes(settings.CRONHOOKS)


def test_a_trigger_that_takes_the_jobs_turn_first_makes_the_failure_final(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    counter = str(tmp_path / "count")
    run_id = queue(client, "flaky", path=counter, failures="5")
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {"BACKEND": "tests.testapp.locks.HookedDatabaseLockBackend"},
    }
    taken: list[str] = []
    # As the failed run frees its lock, a new trigger gets in before its retry.
    HOOKS["before_release"] = lambda: taken.append(
        queue(client, "flaky", path=counter, failures="5")
    )

    assert run_queued(run_id, {"path": counter, "failures": 5}) == "failed"

    [alert] = RecordingBackend.received
    assert (alert.kind, alert.run_id) == ("failure", run_id)
    # No retry was recorded: the new trigger's run has the job's turn.
    assert list(JobRun.objects.values_list("attempt", flat=True)) == [1, 1]
    assert JobRun.objects.get(id=taken[0]).status == "queued"
