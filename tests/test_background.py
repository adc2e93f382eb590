"""Background runs over HTTP: 202 and a status URL, one run at a time, retries,
time limits and a queue that is down, on the task backends tests can run in
process (ImmediateBackend runs the task at once; the database backend keeps
it queued, as no worker runs here). Real worker processes are in
test_task_workers.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from cronhooks.locks import get_backend
from cronhooks.models import IdempotencyKey, JobRun
from cronhooks.runs.tasks import run_queued
from cronhooks.testing import auth_headers, trigger
from tests.conftest import running_record
from tests.test_alerts import RecordingBackend
from tests.test_checks import check_error_codes
from tests.testapp.jobs import FLAKY, SLEEPER

pytestmark = pytest.mark.django_db

Commit = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]
RECORDING = {"recording": {"BACKEND": "tests.test_alerts.RecordingBackend"}}
JOBS: dict[str, Any] = {
    "bg": {
        "command": "echo_params",
        "params": {"count": {"type": "int", "min": 0, "max": 10}},
        "background": True,
    },
    "flaky": {**FLAKY, "retries": 2, "retry_delay": 0},
    "napper": {**SLEEPER, "timeout": 1},
    "bg-napper": {**SLEEPER, "timeout": 1, "background": True},
}


@pytest.fixture(autouse=True)
def _jobs(settings: Any) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {**settings.CRONHOOKS["JOBS"], **JOBS},
        "ALERTS": RECORDING,
    }


@pytest.fixture(autouse=True)
def _nothing_received() -> None:
    RecordingBackend.received.clear()


@pytest.fixture
def queued_only(settings: Any) -> None:
    """Runs stay queued: the database backend, and no worker in this test."""
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TASK_BACKEND": "database"}


# Autocommit, as in production (the views are not atomic): on_commit
# enqueues at once, and ImmediateBackend runs the task before the answer.
committed = pytest.mark.django_db(transaction=True)


def run_of(response: Any) -> JobRun:
    return JobRun.objects.get(id=response.json()["run_id"])


def status_of(client: Client, run_id: str, **headers: str) -> Any:
    return client.get(f"/cron/runs/{run_id}", headers={**auth_headers(), **headers})


# The answer


@committed
@pytest.mark.usefixtures("queued_only")
def test_a_background_job_answers_202_with_a_location_to_its_queued_run(
    client: Client,
) -> None:
    response = trigger(client, "bg", query={"count": "3"})

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["job"] == "bg"
    assert body["params"] == {"count": 3}
    assert body["correlation_id"] == response["X-Correlation-ID"]
    assert body["status_url"] == f"http://testserver/cron/runs/{body['run_id']}"
    assert response["Location"] == body["status_url"]
    assert "Preference-Applied" not in response
    run = run_of(response)
    assert (run.status, run.attempt, run.queued_at) == ("queued", 1, run.started_at)
    [task] = DBTaskResult.objects.all()
    assert task.args_kwargs["args"] == [body["run_id"], {"count": 3}]


def test_the_run_is_enqueued_only_once_its_record_is_committed(
    client: Client, settings: Any, django_capture_on_commit_callbacks: Commit
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TASK_BACKEND": "database"}
    with django_capture_on_commit_callbacks() as callbacks:
        response = trigger(client, "bg")
        assert response.status_code == 202
        assert run_of(response).status == "queued"
        assert DBTaskResult.objects.count() == 0

    assert len(callbacks) == 1
    callbacks[0]()
    assert DBTaskResult.objects.count() == 1


@committed
@pytest.mark.usefixtures("queued_only")
@pytest.mark.parametrize(
    "prefer",
    ["respond-async", "Respond-Async", "wait=10, respond-async", "respond-async; x=1"],
)
def test_prefer_respond_async_runs_any_job_in_the_background(
    client: Client, prefer: str
) -> None:
    response = trigger(client, "mop-recent", headers={"Prefer": prefer})

    assert response.status_code == 202
    assert response["Preference-Applied"] == "respond-async"
    assert run_of(response).status == "queued"


@committed
@pytest.mark.usefixtures("queued_only")
@pytest.mark.parametrize("prefer", ["respond-asyncly", "wait=5", ",;=", "", "async"])
def test_other_or_malformed_preferences_are_ignored(
    client: Client, prefer: str
) -> None:
    response = trigger(client, "mop-recent", headers={"Prefer": prefer})

    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert "Preference-Applied" not in response


@committed
def test_with_the_immediate_backend_the_run_is_done_when_its_status_is_read(
    client: Client,
) -> None:
    response = trigger(client, "bg", query={"count": "2"})
    assert response.status_code == 202

    status = status_of(client, response.json()["run_id"])

    assert status.status_code == 200
    body = status.json()
    assert body["status"] == "succeeded"
    assert json.loads(body["output"])["count"] == 2
    assert body["attempt"] == 1
    assert body["retries"] == []
    assert body["correlation_id"] == response.json()["correlation_id"]
    assert body["started_at"] is not None
    assert body["duration_ms"] is not None
    assert body["fencing_token"] is not None
    assert body["lock_lost"] is False


# The status endpoint


def test_the_status_of_an_inline_run_has_the_fields_of_its_200_answer(
    client: Client,
) -> None:
    answer = trigger(client, "mop-recent").json()

    body = status_of(client, answer["run_id"]).json()

    assert body == {**answer, "retries": []}


@pytest.mark.parametrize(
    "run_id",
    ["not-a-uuid", str(uuid.uuid4()), "%2e%2e%2fhealth", "a/b", "x" * 5000],
)
def test_an_unknown_or_malformed_run_id_is_404_in_json(
    client: Client, run_id: str
) -> None:
    response = status_of(client, run_id)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_run"
    assert len(response.content) < 500


def test_the_status_needs_the_trigger_credentials(client: Client) -> None:
    run_id = trigger(client, "mop-recent").json()["run_id"]
    runs = JobRun.objects.count()

    missing = client.get(f"/cron/runs/{run_id}")
    wrong = client.get(
        f"/cron/runs/{run_id}", headers={"Authorization": "Bearer " + "x" * 40}
    )

    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert run_id not in response.content.decode()
    assert JobRun.objects.count() == runs  # reading is not a trigger


def test_the_status_is_read_only(client: Client) -> None:
    run_id = trigger(client, "mop-recent").json()["run_id"]

    response = client.post(f"/cron/runs/{run_id}", headers=auth_headers())

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_runs_is_a_reserved_job_name(client: Client, settings: Any) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {**settings.CRONHOOKS["JOBS"], "runs": {"command": "echo_params"}},
    }

    assert "cronhooks.E015" in check_error_codes(settings.CRONHOOKS)
    assert trigger(client, "runs").status_code == 503


# One run at a time


@committed
@pytest.mark.usefixtures("queued_only")
def test_a_trigger_while_a_run_is_queued_is_409_naming_it_background_or_inline(
    client: Client,
) -> None:
    first = trigger(client, "bg").json()

    again = trigger(client, "bg")
    inline = trigger(client, "bg", headers={"Prefer": "respond-async"})

    for response in (again, inline):
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "already_queued"
        assert error["details"]["run_id"] == first["run_id"]
        assert error["details"]["status"] == "queued"
        assert error["details"]["since"] == first["queued_at"]
    assert DBTaskResult.objects.count() == 1


@committed
@pytest.mark.usefixtures("queued_only")
def test_an_inline_trigger_of_a_job_with_a_queued_run_is_409(
    client: Client,
) -> None:
    first = trigger(client, "mop-recent", headers={"Prefer": "respond-async"})

    response = trigger(client, "mop-recent")

    assert response.status_code == 409
    assert response.json()["error"]["details"]["run_id"] == first.json()["run_id"]
    assert get_backend().holder("mop-recent") is None  # its lock was given back


@committed
@pytest.mark.usefixtures("queued_only")
def test_a_background_trigger_while_a_run_holds_the_lock_is_409_running(
    client: Client,
) -> None:
    holder = running_record("bg")
    lease = get_backend().acquire("bg", holder.run_id, 60)
    try:
        response = trigger(client, "bg")
    finally:
        get_backend().release(lease)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_running"
    assert response.json()["error"]["details"]["run_id"] == holder.run_id


@committed
@pytest.mark.usefixtures("queued_only")
def test_a_running_run_whose_lock_is_gone_is_abandoned_by_the_next_trigger(
    client: Client,
) -> None:
    dead = running_record("bg")

    response = trigger(client, "bg")

    assert response.status_code == 202
    dead.refresh_from_db()
    assert (dead.status, dead.reason) == ("abandoned", "abandoned")


@committed
@pytest.mark.usefixtures("queued_only")
def test_a_queued_run_past_its_queue_timeout_gives_way_and_is_never_run(
    client: Client,
) -> None:
    first = trigger(client, "bg").json()
    JobRun.objects.filter(id=first["run_id"]).update(
        queued_at=timezone.now() - timedelta(hours=2)
    )

    response = trigger(client, "bg")

    assert response.status_code == 202
    stale = JobRun.objects.get(id=first["run_id"])
    assert (stale.status, stale.reason) == ("abandoned", "queue_timeout")
    # Its task, when a worker gets to it, runs nothing.
    assert run_queued(first["run_id"], {}) == "not_queued"
    assert JobRun.objects.get(id=first["run_id"]).status == "abandoned"


@committed
@pytest.mark.usefixtures("queued_only")
def test_cleanup_abandons_runs_queued_past_their_queue_timeout(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    old = trigger(client, "bg").json()["run_id"]
    JobRun.objects.filter(id=old).update(queued_at=timezone.now() - timedelta(hours=2))
    young = trigger(client, "mop-recent", headers={"Prefer": "respond-async"})

    call_command("cronhooks", "cleanup")

    assert JobRun.objects.get(id=old).status == "abandoned"
    assert run_of(young).status == "queued"
    assert "Marked 1 run(s) as abandoned." in capsys.readouterr().out


# Idempotency keys


@committed
@pytest.mark.usefixtures("queued_only")
def test_a_retried_key_gets_the_same_accepted_run_and_never_enqueues_twice(
    client: Client,
) -> None:
    key = {"Idempotency-Key": "tick-1"}
    first = trigger(client, "bg", headers=key)

    again = trigger(client, "bg", headers=key)

    assert again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["run_id"] == first.json()["run_id"]
    assert again["Location"] == first["Location"]
    assert DBTaskResult.objects.count() == 1

    run_queued(first.json()["run_id"], {})
    finished = trigger(client, "bg", headers=key)

    assert finished.status_code == 200
    assert finished.json()["status"] == "succeeded"
    assert finished.json()["run_id"] == first.json()["run_id"]
    assert DBTaskResult.objects.count() == 1


# Retries


@committed
def test_a_failed_background_run_is_retried_as_attempts_linked_to_the_first(
    client: Client, tmp_path: Path
) -> None:
    counter = str(tmp_path / "count")
    response = trigger(client, "flaky", query={"path": counter, "failures": "2"})
    assert response.status_code == 202

    first = status_of(client, response.json()["run_id"]).json()

    assert first["status"] == "failed"
    assert first["attempt"] == 1
    assert len(first["retries"]) == 2
    attempts = [status_of(client, run_id).json() for run_id in first["retries"]]
    assert [a["status"] for a in attempts] == ["failed", "succeeded"]
    assert [a["attempt"] for a in attempts] == [2, 3]
    assert {a["retry_of"] for a in attempts} == {first["run_id"]}
    assert {a["correlation_id"] for a in attempts} == {first["correlation_id"]}
    # Failures that were retried are not alerted, nor is their "recovery".
    assert RecordingBackend.received == []


@committed
def test_the_last_failed_attempt_is_alerted_once(
    client: Client, tmp_path: Path
) -> None:
    counter = str(tmp_path / "count")
    response = trigger(client, "flaky", query={"path": counter, "failures": "5"})

    runs = JobRun.objects.order_by("attempt")
    assert [run.status for run in runs] == ["failed"] * 3
    [alert] = RecordingBackend.received
    assert (alert.kind, alert.attempt) == ("failure", 3)
    assert alert.run_id == runs[2].run_id
    assert status_of(client, response.json()["run_id"]).json()["retries"] == [
        runs[1].run_id,
        runs[2].run_id,
    ]


@committed
@pytest.mark.usefixtures("queued_only")
def test_a_run_the_worker_refuses_is_not_retried(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    counter = str(tmp_path / "c")
    run_id = trigger(client, "flaky", query={"path": counter}).json()["run_id"]
    jobs = settings.CRONHOOKS["JOBS"]
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {**jobs, "flaky": {**jobs["flaky"], "enabled": False}},
    }

    assert run_queued(run_id, {"path": counter}) == "rejected"

    [run] = JobRun.objects.all()  # no retry, though the job has retries
    assert (run.status, run.reason) == ("rejected", "job_disabled")
    assert RecordingBackend.received == []


@committed
def test_prefer_respond_async_runs_in_the_request_without_task_workers(
    client: Client,
) -> None:
    # The ImmediateBackend (Django 6's default TASKS) would run it here anyway.
    response = trigger(client, "mop-recent", headers={"Prefer": "respond-async"})

    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert "Preference-Applied" not in response


# Time limits


@committed
def test_a_background_run_past_its_timeout_is_stopped_recorded_and_alerted(
    client: Client,
) -> None:
    response = trigger(client, "bg-napper", query={"seconds": "30"})
    assert response.status_code == 202

    run = run_of(response)
    assert (run.status, run.reason) == ("timed_out", "timed_out")
    assert run.duration is not None and run.duration < timedelta(seconds=10)
    assert get_backend().holder("bg-napper") is None
    [alert] = RecordingBackend.received
    assert (alert.kind, alert.status) == ("failure", "timed_out")
    assert alert.title == "Job bg-napper timed out"


def test_an_inline_run_past_its_timeout_is_stopped_too(client: Client) -> None:
    response = trigger(client, "napper", query={"seconds": "30"})

    assert response.status_code == 500
    assert response.json()["status"] == "timed_out"
    assert response.json()["error"]["code"] == "timed_out"


# The queue


@committed
def test_a_queue_that_is_down_answers_503_and_leaves_no_run_queued(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TASK_BACKEND": "rq"}
    key = {"Idempotency-Key": "tick-2"}

    response = trigger(client, "bg", headers=key)

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    body = response.json()
    assert body["status"] == "rejected"
    assert body["error"]["code"] == "queue_unavailable"
    run = run_of(response)
    assert (run.status, run.reason) == ("rejected", "queue_unavailable")
    assert not JobRun.objects.filter(status__in=["queued", "running"]).exists()
    assert not IdempotencyKey.objects.exists()  # the retry may run the job

    settings.CRONHOOKS = {**settings.CRONHOOKS, "TASK_BACKEND": "default"}
    assert trigger(client, "bg", headers=key).status_code == 202


def test_a_task_backend_that_is_not_configured_is_503_for_background_jobs(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TASK_BACKEND": "missing"}

    background = trigger(client, "bg")
    preferred = trigger(client, "mop-recent", headers={"Prefer": "respond-async"})

    assert background.status_code == 503
    assert background.json()["error"]["code"] == "tasks_unavailable"
    # A preference the server cannot honour is ignored (RFC 7240).
    assert preferred.status_code == 200
    assert "cronhooks.E016" in check_error_codes(settings.CRONHOOKS)


# The worker side, run in this process


@committed
@pytest.mark.usefixtures("queued_only")
def test_a_queued_run_of_a_job_disabled_since_is_rejected_by_the_worker(
    client: Client, settings: Any
) -> None:
    run_id = trigger(client, "bg").json()["run_id"]
    jobs = settings.CRONHOOKS["JOBS"]
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {**jobs, "bg": {**jobs["bg"], "enabled": False}},
    }

    assert run_queued(run_id, {}) == "rejected"
    assert JobRun.objects.get(id=run_id).reason == "job_disabled"


@committed
@pytest.mark.usefixtures("queued_only")
def test_a_run_delivered_twice_runs_once(client: Client) -> None:
    run_id = trigger(client, "bg", query={"count": "1"}).json()["run_id"]

    assert run_queued(run_id, {"count": 1}) == "succeeded"
    assert run_queued(run_id, {"count": 1}) == "not_queued"

    assert JobRun.objects.get(id=run_id).output.count("count") == 1


def test_an_unknown_run_id_given_to_the_task_runs_nothing() -> None:
    assert run_queued(str(uuid.uuid4()), {}) == "missing"


# The command line


@committed
@pytest.mark.usefixtures("queued_only")
def test_cronhooks_run_background_enqueues_and_prints_the_run_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    call_command("cronhooks", "run", "mop-recent", "--background")

    run = JobRun.objects.get()
    assert run.status == "queued"
    assert run.source == "cli"
    assert run.run_id in capsys.readouterr().out


@committed
def test_cronhooks_status_shows_one_run(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = trigger(client, "bg", query={"count": "4"}).json()["run_id"]

    call_command("cronhooks", "status", run_id)
    text = capsys.readouterr().out
    call_command("cronhooks", "status", run_id, "--json")
    body = json.loads(capsys.readouterr().out)

    assert "status:           succeeded" in text
    assert f"run_id:           {run_id}" in text
    assert "output_truncated: False" in text
    assert '"count": 4' in text
    assert (body["status"], body["run_id"]) == ("succeeded", run_id)


@pytest.mark.parametrize("run_id", ["nope", str(uuid.uuid4())])
def test_cronhooks_status_of_an_unknown_run_exits_2(run_id: str) -> None:
    with pytest.raises(CommandError) as raised:
        call_command("cronhooks", "status", run_id)

    assert raised.value.returncode == 2
