from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cronhooks.models import IdempotencyKey, JobLock, JobRun

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
