from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cronhooks import models
from cronhooks.models import IdempotencyKey, JobLock, JobRun, LatestRuns

pytestmark = pytest.mark.django_db


def make_run(job: str, minutes_ago: int, status: str = "succeeded") -> JobRun:
    started = timezone.now() - timedelta(minutes=minutes_ago)
    return JobRun.objects.create(
        job=job, status=status, source="http", correlation_id="c", started_at=started
    )


def test_latest_per_job_is_the_newest_run_of_each_job() -> None:
    make_run("a", 30)
    newest_a = make_run("a", 10)
    make_run("a", 20)
    newest_b = make_run("b", 5)

    assert set(JobRun.objects.latest_per_job()) == {newest_a, newest_b}


def test_executed_leaves_out_refused_triggers() -> None:
    ran = make_run("a", 10)
    make_run("a", 1, status="rejected")

    assert list(JobRun.objects.executed().latest_per_job()) == [ran]


def test_duration_is_derived_from_start_and_finish() -> None:
    run = make_run("a", 1)
    assert run.duration is None
    assert run.duration_ms is None

    run.finished_at = run.started_at + timedelta(milliseconds=1500)

    assert run.duration == timedelta(seconds=1.5)
    assert run.duration_ms == 1500


def test_str_names_job_status_and_start() -> None:
    run = make_run("a", 0)

    assert str(run).startswith("a succeeded at ")


def test_an_idempotency_key_and_a_lock_say_which_job_they_belong_to() -> None:
    # As the shell and a database browser show them.
    key = IdempotencyKey(job="nightly", key="tick-42")
    lock = JobLock(job="nightly")

    assert str(key) == "nightly key tick-42"
    assert str(lock) == "lock of nightly"


def record(job: str, status: str, started: datetime, run_id: int) -> JobRun:
    return JobRun.objects.create(
        id=uuid.UUID(int=run_id),
        job=job,
        status=status,
        source="http",
        correlation_id="c",
        started_at=started,
    )


@pytest.fixture(params=["indexed", "window"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The indexed query (PostgreSQL, SQLite) and the window query that other
    databases get must answer alike."""
    if request.param == "window":
        monkeypatch.setattr(models, "_JOB_NAMES", {})
    return str(request.param)


def test_latest_runs_are_each_jobs_last_run_success_and_failure(strategy: str) -> None:
    now = timezone.now()
    record("a", "succeeded", now - timedelta(minutes=30), 1)
    success = record("a", "succeeded", now - timedelta(minutes=20), 2)
    record("a", "failed", now - timedelta(minutes=15), 3)
    failure = record("a", "timed_out", now - timedelta(minutes=10), 4)
    last = record("a", "running", now - timedelta(minutes=5), 5)
    # Refusals and replays are not runs, however recent.
    record("a", "rejected", now, 6)
    record("a", "replayed", now, 7)
    only = record("b", "abandoned", now - timedelta(minutes=1), 8)
    record("c", "rejected", now, 9)

    latest = JobRun.objects.latest_runs(["a", "b", "c", "never-ran"])

    assert latest == {
        "a": LatestRuns(last_run=last, last_success=success, last_failure=failure),
        "b": LatestRuns(last_run=only, last_success=None, last_failure=only),
    }


def test_runs_started_at_the_same_instant_are_ordered_by_id(strategy: str) -> None:
    # As the index orders them, so both strategies pick the same run.
    now = timezone.now()
    record("a", "succeeded", now, 1)
    second = record("a", "succeeded", now, 2)

    assert JobRun.objects.latest_runs(["a"])["a"].last_success == second
    assert JobRun.objects.last_runs(["a"]) == {"a": second}


def test_latest_runs_of_thousands_of_jobs_are_one_query(strategy: str) -> None:
    # One parameter for every name: no backend's parameter limit applies.
    names = [f"job-{number}" for number in range(5000)]
    ran = record("job-4999", "succeeded", timezone.now(), 1)

    with CaptureQueriesContext(connection) as queries:
        latest = JobRun.objects.latest_runs(names)

    assert len(queries) == 1
    assert latest == {"job-4999": LatestRuns(last_run=ran, last_success=ran)}
