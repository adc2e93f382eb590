"""cronhooks.runs.recording: what a run record may hold, and an outcome that
survives its database going away for a moment, or says it was lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from cronhooks.locks import get_backend
from cronhooks.models import JobRun
from cronhooks.runs import execution
from cronhooks.runs.recording import TailBuffer, finish_unstarted
from cronhooks.testing import trigger
from tests.conftest import JsonLines, PostgresProxy
from tests.testapp.jobs import DURING_RUN


def test_tail_buffer_keeps_everything_under_the_limit() -> None:
    buffer = TailBuffer(10)
    buffer.write("abc")
    buffer.write("def")

    assert buffer.getvalue() == "abcdef"
    assert buffer.truncated is False


def test_tail_buffer_keeps_the_last_characters_over_the_limit() -> None:
    buffer = TailBuffer(5)
    for chunk in ("hello ", "big ", "world"):
        buffer.write(chunk)

    assert buffer.getvalue() == "world"
    assert buffer.truncated is True


def test_tail_buffer_is_a_writable_text_stream() -> None:
    buffer = TailBuffer(10)

    print("printed", file=buffer)

    assert buffer.writable()
    assert buffer.getvalue() == "printed\n"


def test_tail_buffer_with_zero_limit_keeps_nothing() -> None:
    buffer = TailBuffer(0)
    buffer.write("x")

    assert buffer.getvalue() == ""
    assert buffer.truncated is True


@pytest.mark.django_db
def test_a_refusal_found_late_never_ends_a_run_another_worker_is_running() -> None:
    # Read while queued by a worker that then waited in vain for the lock,
    # as another worker took the lock and started the run meanwhile.
    stale = JobRun(
        job="ping",
        status=JobRun.Status.QUEUED,
        source=JobRun.Source.HTTP,
        correlation_id="c",
        started_at=timezone.now(),
    )
    stale.save()
    JobRun.objects.filter(id=stale.id).update(status=JobRun.Status.RUNNING)

    ended = finish_unstarted(stale, JobRun.Status.REJECTED, "already_running", "held")

    assert ended is False
    assert JobRun.objects.get(id=stale.id).status == "running"
    assert stale.status == "queued"


# The run history's database going away mid-run: a real PostgreSQL behind a
# proxy that the job itself stops, as a database restart would.

on_proxied_postgres = pytest.mark.django_db(
    transaction=True, databases=["default", "postgres", "proxied"]
)


@pytest.fixture
def hooked(settings: Any) -> Iterator[None]:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {
            **settings.CRONHOOKS["JOBS"],
            "hooked": {"callable": "tests.testapp.jobs.run_hooks", "lock_ttl": 1},
        },
    }
    try:
        yield
    finally:
        DURING_RUN.clear()


@on_proxied_postgres
@pytest.mark.usefixtures("hooked")
def test_a_database_restart_mid_run_does_not_lose_the_outcome(
    client: Client, proxied_history: PostgresProxy, json_lines: JsonLines
) -> None:
    def restart() -> None:
        proxied_history.stop()
        threading.Timer(0.5, proxied_history.start).start()

    DURING_RUN.append(restart)

    response = trigger(client, "hooked")

    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    run = JobRun.objects.get(id=response.json()["run_id"])
    assert (run.status, run.output) == ("succeeded", "hooks ran")
    assert "run_record_retrying" in {line["message"] for line in json_lines()}


@on_proxied_postgres
@pytest.mark.usefixtures("hooked")
def test_an_outcome_that_cannot_be_stored_is_answered_503_with_the_outcome(
    client: Client,
    proxied_history: PostgresProxy,
    json_lines: JsonLines,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(execution, "RECORD_WITHIN_INLINE", 1)
    DURING_RUN.append(proxied_history.stop)

    response = trigger(client, "hooked")

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    body = response.json()
    assert (body["status"], body["output"], body["recorded"]) == (
        "succeeded",
        "hooks ran",
        False,
    )
    assert body["record_error"]["code"] == "outcome_not_recorded"
    [line] = [
        line for line in json_lines() if line["message"] == "run_outcome_not_recorded"
    ]
    assert (line["status"], line["output"], line["run_id"]) == (
        "succeeded",
        "hooks ran",
        body["run_id"],
    )
    # Its lock is left to expire, so nothing runs the job again meanwhile on
    # the strength of the record that still says "running".
    holder = get_backend().holder("hooked")
    assert holder is not None and holder.run_id == body["run_id"]

    DURING_RUN.clear()
    proxied_history.start()
    assert JobRun.objects.get(id=body["run_id"]).status == "running"
    time.sleep(1.2)  # the lock's TTL
    assert trigger(client, "hooked").status_code == 200
    assert JobRun.objects.get(id=body["run_id"]).status == "abandoned"
