"""cronhooks.runs.slots: one queued-or-running run per job, and the runs whose
holder is gone."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from cronhooks.jobs import get_job
from cronhooks.models import JobRun
from cronhooks.runs.slots import abandon
from cronhooks.testing import trigger
from tests.conftest import running_record

pytestmark = pytest.mark.django_db


def running(job: str, *, ago: timedelta, fencing_token: int | None) -> JobRun:
    run: JobRun = running_record(
        job, ago=ago.total_seconds(), fencing_token=fencing_token
    )
    return run


def test_the_database_refuses_a_second_active_run_of_a_job() -> None:
    running("ping", ago=timedelta(0), fencing_token=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        JobRun.objects.create(
            job="ping",
            status=JobRun.Status.QUEUED,
            source=JobRun.Source.HTTP,
            correlation_id="d",
            started_at=timezone.now(),
        )
    # Finished runs are not limited.
    for status in ("succeeded", "failed", "rejected", "abandoned", "timed_out"):
        JobRun.objects.create(
            job="ping",
            status=status,
            source=JobRun.Source.HTTP,
            correlation_id=status,
            started_at=timezone.now(),
        )


def test_a_run_without_a_lock_keeps_the_jobs_turn_for_a_lock_ttl(
    client: Client,
) -> None:
    # FAIL_OPEN ran it without a lock: nothing tells it from a dead run.
    young = running("ping", ago=timedelta(seconds=3599), fencing_token=None)

    assert trigger(client, "ping").status_code == 409

    JobRun.objects.filter(id=young.id).update(
        started_at=timezone.now() - timedelta(seconds=3601)
    )
    assert trigger(client, "ping").status_code == 200
    young.refresh_from_db()
    assert young.status == "abandoned"


def test_abandoning_a_run_that_finished_meanwhile_keeps_its_outcome() -> None:
    run = running("ping", ago=timedelta(seconds=5), fencing_token=1)
    JobRun.objects.filter(id=run.id).update(status="succeeded")

    assert abandon(get_job("ping"), run) is False
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_cleanup_abandons_active_runs_of_jobs_no_longer_declared(
    settings: Any,
) -> None:
    gone = running("retired-job", ago=timedelta(seconds=5), fencing_token=3)
    out = StringIO()

    call_command("cronhooks", "cleanup", stdout=out)

    gone.refresh_from_db()
    assert (gone.status, gone.reason) == ("abandoned", "abandoned")
    assert "Marked 1 run(s) as abandoned." in out.getvalue()
