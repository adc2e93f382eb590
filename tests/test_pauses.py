"""Pausing a job: stored in the database, refused with 503 job_paused, not
overdue, and who paused and resumed it kept."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cronhooks.models import JobPause, JobRun
from cronhooks.pauses import open_pause, open_pauses, pause_job, resume_job
from cronhooks.status import job_statuses
from tests.conftest import JsonLines

pytestmark = pytest.mark.django_db


def cronhooks(*args: str) -> str:
    out = StringIO()
    call_command("cronhooks", *args, stdout=out)
    return out.getvalue()


# Pausing and resuming


def test_a_pause_is_a_row_naming_who_paused_and_why() -> None:
    pause, opened = pause_job("ping", by="alice", reason="INC-42")

    assert opened
    stored = JobPause.objects.get()
    assert (stored.job, stored.paused_by, stored.reason) == ("ping", "alice", "INC-42")
    assert stored.resumed_at is None
    assert open_pause("ping") == pause


def test_pausing_a_paused_job_keeps_the_first_pause() -> None:
    first, _ = pause_job("ping", by="alice", reason="first")

    again, opened = pause_job("ping", by="bob", reason="second")

    assert not opened
    assert again == first
    assert again.reason == "first"
    assert JobPause.objects.count() == 1


def test_resuming_closes_the_pause_and_keeps_it_as_the_record() -> None:
    pause_job("ping", by="alice")

    closed = resume_job("ping", by="bob")

    assert closed is not None
    stored = JobPause.objects.get()
    assert (stored.paused_by, stored.resumed_by) == ("alice", "bob")
    assert stored.resumed_at is not None and stored.resumed_at >= stored.paused_at
    assert open_pause("ping") is None


def test_each_pause_of_a_job_is_kept() -> None:
    pause_job("ping", by="alice")
    resume_job("ping", by="alice")
    pause_job("ping", by="bob")

    assert [p.paused_by for p in JobPause.objects.order_by("paused_at")] == [
        "alice",
        "bob",
    ]
    assert list(open_pauses()) == ["ping"]


def test_resuming_a_job_that_is_not_paused_changes_nothing() -> None:
    assert resume_job("ping", by="bob") is None
    assert not JobPause.objects.exists()


def test_pausing_and_resuming_are_logged(json_lines: JsonLines) -> None:
    pause_job("ping", by="alice", reason="INC-42")
    resume_job("ping", by="bob")

    lines = [line for line in json_lines() if line["name"] == "cronhooks"]
    assert [(line["message"], line["job"]) for line in lines] == [
        ("job_paused", "ping"),
        ("job_resumed", "ping"),
    ]
    assert (lines[0]["paused_by"], lines[0]["reason"]) == ("alice", "INC-42")
    assert lines[1]["resumed_by"] == "bob"


def test_a_secret_in_a_reason_is_never_stored(settings: Any) -> None:
    token = settings.CRONHOOKS["TOKENS"][0]

    pause, _ = pause_job("ping", reason=f"rotated {token}")

    assert token not in pause.reason
    assert token not in JobPause.objects.get().reason


def test_open_pauses_of_some_jobs_only() -> None:
    pause_job("ping")
    pause_job("boom")

    assert set(open_pauses(["ping", "echo"])) == {"ping"}


# Triggers of a paused job


def test_a_paused_jobs_trigger_is_refused_503_job_paused_and_recorded(
    client: Client, auth: dict[str, str]
) -> None:
    pause_job("ping", by="alice", reason="INC-42")

    response = client.post("/cron/ping", headers=auth)

    assert response.status_code == 503
    assert response["Retry-After"] == "3600"
    error = response.json()["error"]
    assert error["code"] == "job_paused"
    assert error["details"]["reason"] == "INC-42"
    assert "cronhooks resume ping" in error["message"]
    run = JobRun.objects.get()
    assert (run.job, run.status, run.reason) == ("ping", "rejected", "job_paused")


def test_a_pause_without_a_reason_says_only_since_when(
    client: Client, auth: dict[str, str]
) -> None:
    pause, _ = pause_job("ping")

    error = client.post("/cron/ping", headers=auth).json()["error"]

    assert error["details"] == {"paused_at": pause.paused_at.isoformat()}


def test_a_resumed_job_runs_again(client: Client, auth: dict[str, str]) -> None:
    pause_job("ping")
    resume_job("ping")

    assert client.post("/cron/ping", headers=auth).status_code == 200


def test_a_pause_of_one_job_leaves_the_others_running(
    client: Client, auth: dict[str, str]
) -> None:
    pause_job("boom")

    assert client.post("/cron/ping", headers=auth).status_code == 200


def test_checking_the_pause_costs_one_query(
    client: Client, auth: dict[str, str]
) -> None:
    client.post("/cron/ping", headers=auth)
    with CaptureQueriesContext(connection) as unpaused:
        client.post("/cron/ping", headers=auth)
    pause_job("ping")

    with CaptureQueriesContext(connection) as paused:
        client.post("/cron/ping", headers=auth)

    lookups = [q["sql"] for q in unpaused if "cronhooks_jobpause" in q["sql"]]
    assert len(lookups) == 1
    assert '"resumed_at" IS NULL' in lookups[0]
    # Refused at the lookup: its record, and nothing else.
    assert len(paused) == 2


def test_a_run_is_refused_from_the_command_line_too() -> None:
    pause_job("ping")

    with pytest.raises(CommandError) as excinfo:
        cronhooks("run", "ping")

    assert excinfo.value.returncode == 2
    assert "is paused" in str(excinfo.value)
    assert JobRun.objects.get().reason == "job_paused"


def test_an_unreadable_pause_refuses_the_trigger_503(
    client: Client, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(job: str) -> None:
        raise DatabaseError("no such table")

    monkeypatch.setattr("cronhooks.runs.admission.open_pause", unavailable)

    response = client.post("/cron/ping", headers=auth)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "backend_unavailable"


# Where a paused job stands


def test_a_paused_job_is_paused_not_overdue_and_no_problem(settings: Any) -> None:
    jobs = settings.CRONHOOKS["JOBS"]
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {
            **jobs,
            "ee-recent": {**jobs["ee-recent"], "critical": True, "grace": 60},
        },
    }
    long_ago = timezone.now() - timedelta(days=1)
    JobRun.objects.create(
        job="ee-recent",
        status="succeeded",
        source="http",
        correlation_id="x",
        started_at=long_ago,
        finished_at=long_ago,
    )
    assert job_statuses()["ee-recent"].state == "overdue"
    pause_job("ee-recent", by="alice", reason="INC-42")

    status = job_statuses()["ee-recent"]

    assert status.state == "paused"
    assert not status.overdue
    assert not status.critical_problem
    assert status.next_run is None
    assert status.attention == 3
    assert status.as_dict()["paused"] == {
        "paused_at": status.pause.paused_at.isoformat(),  # type: ignore[union-attr]
        "paused_by": "alice",
        "reason": "INC-42",
    }


def test_health_shows_a_paused_job_and_stays_healthy(
    client: Client, auth: dict[str, str], settings: Any
) -> None:
    jobs = settings.CRONHOOKS["JOBS"]
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {**jobs, "boom": {**jobs["boom"], "critical": True}},
    }
    client.post("/cron/boom", headers=auth)
    assert client.get("/health", headers=auth).status_code == 503
    pause_job("boom")

    response = client.get("/health", headers=auth)

    assert response.status_code == 200
    body = response.json()
    assert body["jobs"]["boom"]["state"] == "paused"
    assert body["jobs"]["boom"]["paused"]["paused_by"] is None
    assert body["jobs"]["ping"]["paused"] is None
    assert body["jobs_summary"]["states"]["paused"] == 1


def test_a_disabled_job_stays_disabled_when_paused() -> None:
    pause_job("off")

    assert job_statuses()["off"].state == "disabled"


# The command line


def test_cronhooks_pause_and_resume() -> None:
    output = cronhooks("pause", "ping", "--reason", "INC-42", "--by", "alice")

    assert "ping is paused" in output
    assert open_pause("ping").reason == "INC-42"  # type: ignore[union-attr]

    output = cronhooks("resume", "ping", "--by", "bob")

    assert "ping is resumed" in output
    assert JobPause.objects.get().resumed_by == "bob"


def test_cronhooks_pause_records_the_user_running_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "carol")

    cronhooks("pause", "ping")
    cronhooks("resume", "ping")

    pause = JobPause.objects.get()
    assert (pause.paused_by, pause.resumed_by) == ("cli:carol", "cli:carol")


def test_cronhooks_pause_twice_says_so() -> None:
    cronhooks("pause", "ping", "--by", "alice")

    output = cronhooks("pause", "ping", "--by", "bob")

    assert "already paused (by alice since" in output
    assert JobPause.objects.get().paused_by == "alice"


def test_cronhooks_pause_twice_without_a_name_says_unknown() -> None:
    cronhooks("pause", "ping", "--by", "")

    assert "already paused (by unknown since" in cronhooks("pause", "ping")


def test_cronhooks_resume_of_a_running_job_says_so() -> None:
    assert "ping was not paused; nothing changed." in cronhooks("resume", "ping")


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_cronhooks_pause_or_resume_of_an_unknown_job_exits_2(action: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        cronhooks(action, "nope")

    assert excinfo.value.returncode == 2
    assert "There is no job 'nope'" in str(excinfo.value)


def test_a_job_no_longer_declared_can_still_be_resumed() -> None:
    pause_job("gone")

    assert "gone is resumed" in cronhooks("resume", "gone")


def test_cronhooks_list_and_status_show_paused() -> None:
    pause_job("ping")

    listed = cronhooks("list")
    status = cronhooks("status")

    assert [
        line.split()[:3] for line in listed.splitlines() if line.startswith("ping")
    ] == [["ping", "manual", "paused"]]
    assert [
        line.split()[:2] for line in status.splitlines() if line.startswith("ping")
    ] == [["ping", "paused"]]
    # A switched-off job is "no", paused or not.
    pause_job("off")
    off = [line for line in cronhooks("list").splitlines() if line.startswith("off ")]
    assert off[0].split()[2] == "no"


def test_a_pause_reads_as_its_job_and_time() -> None:
    pause, _ = pause_job("ping")

    assert str(pause) == f"ping paused at {pause.paused_at:%Y-%m-%d %H:%M:%S}"
