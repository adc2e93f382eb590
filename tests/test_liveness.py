"""cronhooks.liveness: whether a run the history calls active can finish."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from cronhooks.jobs import Job
from cronhooks.liveness import holder_gone, queue_expired
from cronhooks.locks import get_backend
from cronhooks.models import JobRun
from tests.conftest import JsonLines


def running(job: str = "sync") -> JobRun:
    return JobRun(
        job=job,
        status=JobRun.Status.RUNNING,
        source=JobRun.Source.HTTP,
        correlation_id="c",
        started_at=timezone.now(),
    )


def test_a_queued_run_expires_after_its_jobs_queue_timeout() -> None:
    job = Job(name="sync", queue_timeout=60)
    run = running()
    now = timezone.now()
    run.queued_at = now - timedelta(seconds=61)

    assert queue_expired(job, run, now)
    run.queued_at = now - timedelta(seconds=59)
    assert not queue_expired(job, run, now)


@pytest.mark.django_db(transaction=True)
def test_a_run_holding_its_jobs_lock_is_not_gone() -> None:
    run = running()
    lease = get_backend().acquire("sync", run.run_id, ttl=30)
    try:
        assert not holder_gone(run)
    finally:
        get_backend().release(lease)


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_lock_is_free_or_anothers_is_gone() -> None:
    run = running()
    assert holder_gone(run)

    lease = get_backend().acquire("sync", "another-run", ttl=30)
    try:
        assert holder_gone(run)
    finally:
        get_backend().release(lease)


def test_a_run_is_not_taken_for_gone_when_the_lock_backend_cannot_tell(
    settings: Any, json_lines: JsonLines
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "LOCKS": {"BACKEND": "nope.Nope"}}

    assert not holder_gone(running())
    assert "lock_holder_unknown" in [line["message"] for line in json_lines()]
