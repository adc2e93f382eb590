"""Background runs on real task engines, run by real worker processes.

Each test runs once with django-tasks-db (``manage.py db_worker``, on this
suite's database: SQLite, or PostgreSQL with CRONHOOKS_TEST_DATABASE=postgres)
and once with RQ (``manage.py rqworker --job-class django_tasks_rq.Job
--with-scheduler`` on a private redis-server), started as their users start
them. The test process triggers through the real view and reads the outcome
through the run's status URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from cronhooks.locks import get_backend
from cronhooks.models import JobRun
from cronhooks.testing import auth_headers, trigger
from tests.conftest import Webhook
from tests.servers import RedisServer
from tests.testapp.jobs import FLAKY, INTERVAL, SLEEPER
from tests.workers import worker_env

pytestmark = pytest.mark.django_db(transaction=True)

FINAL = {"succeeded", "failed", "timed_out", "abandoned", "rejected"}
JOBS: dict[str, Any] = {
    "capped": {**SLEEPER, "background": True, "timeout": 1},
    "deaf": {
        "callable": "tests.testapp.jobs.ignore_time_limit",
        "background": True,
        "timeout": 1,
    },
    "flaky": {**FLAKY, "retries": 1, "retry_delay": 2},
    "held": {**INTERVAL, "lock_ttl": 2},
}
DATABASE_LOCKS = {"BACKEND": "cronhooks.locks.database.DatabaseLockBackend"}


class Engine:
    """A task engine: its settings, and the worker processes started on it."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.env = env
        self.log = log
        self.workers: list[subprocess.Popen[bytes]] = []

    @property
    def command(self) -> list[str]:
        manage = [sys.executable, "-m", "django"]
        if self.name == "rq":
            return [
                *manage,
                "rqworker",
                "default",
                "--job-class",
                "django_tasks_rq.Job",
                "--with-scheduler",
            ]
        return [
            *manage,
            "db_worker",
            "--backend",
            "database",
            "--interval",
            "0.1",
            "--no-startup-delay",
            "--no-reload",
        ]

    def start_worker(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            worker = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.workers.append(worker)
        return worker

    def kill(self, worker: subprocess.Popen[bytes]) -> None:
        """SIGKILL to the worker and every process it started (RQ's work
        horse has a process group of its own), as a machine gone would."""
        for pid in [worker.pid, *children(worker.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)

    def stop_all(self) -> None:
        # No warm shutdown to wait for: every run a test started has ended.
        for worker in self.workers:
            self.kill(worker)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


def children(pid: int) -> list[int]:
    """Every descendant of ``pid``, from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after it.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


@pytest.fixture(params=["database", "rq"])
def engine(
    request: pytest.FixtureRequest, settings: Any, tmp_path: Path, webhook: Webhook
) -> Iterator[Engine]:
    overrides = {
        "TASK_BACKEND": request.param,
        "JOBS": {**settings.CRONHOOKS["JOBS"], **JOBS},
        "ALERTS": {
            "slack": {
                "BACKEND": "cronhooks.alerts.slack.SlackAlertBackend",
                "OPTIONS": {"WEBHOOK_URL": webhook.url},
            }
        },
        "TIMEOUT_GRACE": 1,
        "LOCKS": DATABASE_LOCKS,
        # These tests trigger one job many times a minute on purpose.
        "RATE_LIMITS": {"PER_JOB": None},
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, **overrides}
    extra = {
        "CRONHOOKS_WORKER_SETTINGS": json.dumps(overrides),
        "CRONHOOKS_WORKER_JSON_LOGS": "1",
    }
    if request.param == "rq":
        server: RedisServer = request.getfixturevalue("redis_server")
        settings.RQ_QUEUES = {"default": {"URL": server.url, "DEFAULT_TIMEOUT": -1}}
        extra["CRONHOOKS_TEST_RQ_URL"] = server.url
    engine = Engine(request.param, worker_env(DATABASE_LOCKS, extra), tmp_path / "log")
    try:
        yield engine
    finally:
        engine.stop_all()


def status(client: Client, run_id: str) -> dict[str, Any]:
    response = client.get(f"/cron/runs/{run_id}", headers=auth_headers())
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def wait_for(
    client: Client, run_id: str, statuses: set[str] = FINAL, timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = status(client, run_id)
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"still {body['status']}: {body}"
        time.sleep(0.1)


def accepted(response: Any) -> str:
    assert response.status_code == 202, response.content
    run_id: str = response.json()["run_id"]
    return run_id


def test_the_worker_runs_the_job_and_its_log_lines_carry_the_trigger_id(
    engine: Engine, client: Client
) -> None:
    engine.start_worker()
    response = trigger(
        client,
        "mop-recent",
        query={"delta": "7"},
        headers={"Prefer": "respond-async", "X-Correlation-ID": "tick-2026-12-02"},
    )

    body = wait_for(client, accepted(response))

    assert body["status"] == "succeeded"
    assert body["params"] == {"delta": 7}
    assert "imported 1 elections (delta=7 minutes)" in body["output"]
    assert body["fencing_token"] is not None
    lines = [
        line
        for line in engine.log_lines()
        if line.get("correlation_id") == "tick-2026-12-02"
    ]
    messages = {line["message"] for line in lines}
    assert {"run_started", "run_finished"} <= messages
    # The command's own logging.getLogger(__name__) line, in the worker.
    assert "imported 1 elections (delta=7 minutes)" in messages
    assert {line["run_id"] for line in lines} == {body["run_id"]}


def wait_for_release(job: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while get_backend().holder(job) is not None:
        assert time.monotonic() < deadline, "the lock was never freed"
        time.sleep(0.05)


def test_a_run_past_its_timeout_is_stopped_recorded_released_and_alerted(
    engine: Engine, client: Client, webhook: Webhook
) -> None:
    engine.start_worker()

    body = wait_for(
        client, accepted(trigger(client, "capped", query={"seconds": "30"}))
    )

    assert body["status"] == "timed_out"
    assert body["error"]["code"] == "timed_out"
    assert body["duration_ms"] < 10_000
    # The outcome is written before the lease is freed: the status URL can
    # say timed_out a moment before the worker lets go of the lock.
    wait_for_release("capped", timeout=5)
    [alert] = webhook.wait_for(1)
    assert "Job capped timed out" in alert["text"]
    # The worker lives on and takes the next run.
    again = wait_for(
        client, accepted(trigger(client, "capped", query={"seconds": "0"}))
    )
    assert again["status"] == "succeeded"


def test_a_job_deaf_to_its_time_limit_is_ended_with_its_process_and_recorded(
    engine: Engine, client: Client, webhook: Webhook
) -> None:
    worker = engine.start_worker()

    body = wait_for(client, accepted(trigger(client, "deaf")))

    assert body["status"] == "timed_out"
    assert "task worker process was ended" in body["error"]["message"]
    [alert] = webhook.wait_for(1)
    assert "Job deaf timed out" in alert["text"]
    # Freed last, as the process ends: never while the deaf job still ran.
    wait_for_release("deaf", timeout=15)
    if engine.name == "database":
        # db_worker runs tasks in its own process: it is the one ended (and
        # its supervisor starts it again).
        assert worker.wait(timeout=10) == 70
    else:
        # RQ runs each job in a forked work horse: the worker goes on.
        assert worker.poll() is None
        again = wait_for(
            client, accepted(trigger(client, "capped", query={"seconds": "0"}))
        )
        assert again["status"] == "succeeded"


def test_a_failed_run_is_retried_by_the_worker_after_its_delay(
    engine: Engine, client: Client, tmp_path: Path
) -> None:
    engine.start_worker()
    counter = str(tmp_path / "count")

    first = wait_for(
        client,
        accepted(trigger(client, "flaky", query={"path": counter, "failures": "1"})),
    )

    assert first["status"] == "failed"
    [retry_id] = wait_for_retries(client, first["run_id"], 1)
    retry = wait_for(client, retry_id)
    assert (retry["status"], retry["attempt"], retry["retry_of"]) == (
        "succeeded",
        2,
        first["run_id"],
    )
    # Not before its retry_delay (2 s, give or take RQ's scheduling, which
    # counts whole seconds) had passed.
    waited = parse(retry["started_at"]) - parse(first["finished_at"])
    assert waited.total_seconds() >= 1


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def wait_for_retries(
    client: Client, run_id: str, count: int, timeout: float = 10
) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(retries := status(client, run_id)["retries"]) < count:
        assert time.monotonic() < deadline, "no retry was queued"
        time.sleep(0.1)
    return list(retries)


def test_a_killed_worker_leaves_its_run_abandoned_once_its_lease_expires(
    engine: Engine, client: Client, tmp_path: Path
) -> None:
    intervals = tmp_path / "intervals"
    worker = engine.start_worker()
    orphan_id = accepted(
        trigger(client, "held", query={"path": str(intervals), "seconds": "30"})
    )
    wait_for(client, orphan_id, {"running"})

    engine.kill(worker)

    # Its lease (2 s) is still held: the job's turn is still taken.
    refused = trigger(client, "held", query={"path": str(intervals), "seconds": "0"})
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["run_id"] == orphan_id
    engine.start_worker()
    deadline = time.monotonic() + 15
    while (
        response := trigger(
            client, "held", query={"path": str(intervals), "seconds": "0"}
        )
    ).status_code == 409:
        assert time.monotonic() < deadline, "the dead run's lease never expired"
        time.sleep(0.2)
    assert wait_for(client, accepted(response))["status"] == "succeeded"

    orphan = status(client, orphan_id)
    assert (orphan["status"], orphan["error"]["code"]) == ("abandoned", "abandoned")
    # Only the new run ever finished the job: the killed one never resumed.
    assert len(intervals.read_text().splitlines()) == 1
    assert JobRun.objects.filter(job="held", status="running").count() == 0


# The database backend's queue is the run history's own database: that one
# being down is test_views.py's test_database_down_is_503_with_retry_after.
@pytest.mark.parametrize("engine", ["rq"], indirect=True)
def test_a_stopped_queue_server_answers_503_and_nothing_is_left_queued(
    engine: Engine, client: Client, request: pytest.FixtureRequest
) -> None:
    server: RedisServer = request.getfixturevalue("redis_server")
    server.stop()

    refused = trigger(client, "capped", query={"seconds": "0"})

    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "queue_unavailable"
    assert not JobRun.objects.filter(status__in=["queued", "running"]).exists()
    server.start()
    engine.start_worker()
    body = wait_for(client, accepted(trigger(client, "capped", query={"seconds": "0"})))
    assert body["status"] == "succeeded"
