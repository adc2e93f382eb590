"""Missed and late runs: each job against its schedule, on a controlled clock.

The clock is moved with time_machine; runs are recorded as the scheduler
would have left them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import timezone as tz
from io import StringIO
from typing import Any, Protocol

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cronhooks.health import job_report
from cronhooks.locks import get_backend
from cronhooks.models import JobRun
from cronhooks.status import job_statuses, previous_tick

pytestmark = pytest.mark.django_db

PING = "tests.testapp.jobs.ping"


class Clock(Protocol):
    """What time_machine.travel() yields (its class name differs by version)."""

    def move_to(self, destination: datetime, tick: bool | None = None) -> None: ...


JOBS: dict[str, Any] = {
    "every-5": {"callable": PING, "schedule": "*/5 * * * *", "grace": 60},
    "daily": {"callable": PING, "schedule": "6 2 * * *", "grace": 900},
    # Mondays at 09:00.
    "weekly": {"callable": PING, "schedule": "0 9 * * 1", "grace": 900},
    "manual": {"callable": PING},
}


def utc(
    year: int, month: int, day: int, hour: int, minute: int, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz.utc)


@pytest.fixture(autouse=True)
def jobs(settings: Any) -> dict[str, Any]:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": dict(JOBS)}
    return settings.CRONHOOKS["JOBS"]  # type: ignore[no-any-return]


@pytest.fixture
def clock() -> Iterator[Clock]:
    with time_machine.travel(utc(2026, 11, 16, 12, 0), tick=False) as traveller:
        yield traveller


def at(clock: Clock, when: datetime) -> None:
    clock.move_to(when)


def record(
    job: str, status: str, started: datetime, seconds: float | None = 30
) -> JobRun:
    finished = None if seconds is None else started + timedelta(seconds=seconds)
    return JobRun.objects.create(
        job=job,
        status=status,
        source=JobRun.Source.HTTP,
        correlation_id=f"{job}-{started:%H%M%S}",
        started_at=started,
        finished_at=finished,
        error="boom" if status == "failed" else "",
    )


def status_of(job: str) -> dict[str, Any]:
    return job_statuses()[job].as_dict()


def test_previous_tick_includes_a_tick_exactly_now() -> None:
    assert previous_tick("*/5 * * * *", utc(2026, 1, 1, 12, 5)) == utc(
        2026, 1, 1, 12, 5
    )
    assert previous_tick("*/5 * * * *", utc(2026, 1, 1, 12, 4, 59)) == utc(
        2026, 1, 1, 12, 0
    )


# Every five minutes, one minute of grace


def test_a_five_minute_job_is_on_time_until_the_next_tick_plus_grace(
    clock: Clock,
) -> None:
    record("every-5", "succeeded", utc(2026, 11, 16, 12, 0, 2))
    at(clock, utc(2026, 11, 16, 12, 5, 59))

    status = status_of("every-5")

    assert (status["state"], status["overdue"]) == ("ok", False)
    assert status["next_run"] == "2026-11-16T12:10:00+00:00"
    assert status["last_success"]["correlation_id"] == "every-5-120002"


def test_a_five_minute_job_is_overdue_once_a_tick_plus_grace_passes_unserved(
    clock: Clock,
) -> None:
    record("every-5", "succeeded", utc(2026, 11, 16, 12, 0, 2))
    at(clock, utc(2026, 11, 16, 12, 6, 1))

    status = status_of("every-5")

    assert (status["state"], status["overdue"]) == ("overdue", True)
    assert status["missed_tick"] == "2026-11-16T12:05:00+00:00"
    assert status["overdue_since"] == "2026-11-16T12:06:00+00:00"


def test_a_run_still_going_at_its_deadline_does_not_count_until_it_succeeds(
    clock: Clock,
) -> None:
    record("every-5", "succeeded", utc(2026, 11, 16, 12, 0, 1))
    run = record("every-5", "running", utc(2026, 11, 16, 12, 5, 1), seconds=None)
    at(clock, utc(2026, 11, 16, 12, 6, 1))

    assert status_of("every-5")["overdue"] is True

    at(clock, utc(2026, 11, 16, 12, 6, 31))
    run.status, run.finished_at = "succeeded", utc(2026, 11, 16, 12, 6, 31)
    run.save()
    assert status_of("every-5")["overdue"] is False


def test_a_failed_run_does_not_serve_the_tick(
    clock: Clock,
) -> None:
    record("every-5", "succeeded", utc(2026, 11, 16, 12, 0, 1))
    record("every-5", "failed", utc(2026, 11, 16, 12, 5, 1))
    at(clock, utc(2026, 11, 16, 12, 7))

    status = status_of("every-5")

    assert (status["overdue"], status["failing"]) == (True, True)
    assert status["last_failure"]["error"] == "boom"


# Daily, fifteen minutes of grace


def test_a_daily_job_is_not_overdue_during_the_day_after_its_run(
    clock: Clock,
) -> None:
    record("daily", "succeeded", utc(2026, 11, 15, 2, 6, 20))
    at(clock, utc(2026, 11, 16, 2, 20, 59))  # today's tick is within grace

    assert status_of("daily")["overdue"] is False


def test_a_daily_job_is_overdue_when_todays_tick_goes_unserved(
    clock: Clock,
) -> None:
    record("daily", "succeeded", utc(2026, 11, 15, 2, 6, 20))
    at(clock, utc(2026, 11, 16, 2, 21, 1))

    status = status_of("daily")

    assert status["missed_tick"] == "2026-11-16T02:06:00+00:00"
    assert status["next_run"] == "2026-11-17T02:06:00+00:00"


# Day of week


def test_a_weekly_job_stays_on_time_all_week(clock: Clock) -> None:
    record("weekly", "succeeded", utc(2026, 11, 9, 9, 0, 5))  # a Monday
    at(clock, utc(2026, 11, 16, 9, 14, 59))  # next Monday, within grace

    assert status_of("weekly")["overdue"] is False


def test_a_weekly_job_is_overdue_the_monday_it_does_not_run(
    clock: Clock,
) -> None:
    record("weekly", "succeeded", utc(2026, 11, 9, 9, 0, 5))
    at(clock, utc(2026, 11, 16, 9, 15, 1))

    assert status_of("weekly")["missed_tick"] == "2026-11-16T09:00:00+00:00"


# Jobs that never ran, and jobs that cannot be late


def test_a_job_that_never_ran_is_pending_not_overdue(clock: Clock) -> None:
    # Nothing tells a job added a minute ago from one never called: a new
    # critical job must not turn /health 503 on the deploy that adds it.
    at(clock, utc(2026, 11, 16, 12, 30))

    status = status_of("every-5")

    assert (status["state"], status["overdue"]) == ("pending", False)
    assert status["last_run"] is status["last_success"] is None
    assert status["next_run"] == "2026-11-16T12:35:00+00:00"


def test_a_job_that_never_succeeded_is_overdue_for_ticks_after_its_first_run(
    clock: Clock,
) -> None:
    record("daily", "failed", utc(2026, 11, 14, 2, 6, 5))
    at(clock, utc(2026, 11, 14, 2, 21, 1))

    # The tick it failed at is served by nothing, but it was its first run.
    assert status_of("daily")["overdue"] is False

    at(clock, utc(2026, 11, 15, 2, 21, 1))
    status = status_of("daily")
    assert (status["state"], status["failing"]) == ("overdue", True)
    assert status["missed_tick"] == "2026-11-15T02:06:00+00:00"


def test_manual_disabled_and_elsewhere_scheduled_jobs_are_never_overdue(
    clock: Clock, jobs: dict[str, Any]
) -> None:
    jobs["switched-off"] = {**JOBS["every-5"], "enabled": False}
    jobs["staging-only"] = {**JOBS["every-5"], "schedule": {"staging": "* * * * *"}}
    at(clock, utc(2026, 11, 16, 12, 30))

    statuses = job_statuses()

    for name, state in [
        ("manual", "manual"),
        ("switched-off", "disabled"),
        ("staging-only", "manual"),
    ]:
        assert (statuses[name].overdue, statuses[name].state) == (False, state)


def test_a_later_success_clears_failing(clock: Clock) -> None:
    record("manual", "failed", utc(2026, 11, 16, 11, 0))
    record("manual", "succeeded", utc(2026, 11, 16, 11, 30))

    status = status_of("manual")

    assert status["failing"] is False
    assert status["last_failure"]["status"] == "failed"


def test_an_abandoned_run_counts_as_a_failure(clock: Clock) -> None:
    record("manual", "abandoned", utc(2026, 11, 16, 11, 0))

    assert status_of("manual")["failing"] is True


# Stuck runs


def test_a_run_stuck_running_past_its_lock_ttl_without_its_lock_shows_abandoned(
    clock: Clock, jobs: dict[str, Any]
) -> None:
    jobs["daily"] = {**JOBS["daily"], "lock_ttl": 60}
    record("daily", "running", utc(2026, 11, 16, 11, 58, 59), seconds=None)

    status = status_of("daily")

    assert status["state"] == "abandoned"
    assert status["last_run"]["status"] == "abandoned"


def test_a_long_run_still_holding_its_lock_shows_running(
    clock: Clock, jobs: dict[str, Any]
) -> None:
    jobs["daily"] = {**JOBS["daily"], "lock_ttl": 60}
    run = record("daily", "running", utc(2026, 11, 16, 11, 0), seconds=None)
    lease = get_backend().acquire("daily", run.run_id, 3600)
    assert lease is not None

    assert status_of("daily")["state"] == "running"


def test_a_run_younger_than_its_lock_ttl_shows_running_without_a_lock_lookup(
    clock: Clock,
) -> None:
    record("daily", "running", utc(2026, 11, 16, 11, 59), seconds=None)

    with CaptureQueriesContext(connection) as queries:
        assert status_of("daily")["state"] == "running"

    # The last runs and the open pauses; no lock lookup.
    assert len(queries) == 2
    assert not any("cronhooks_joblock" in query["sql"] for query in queries)


# Background runs waiting for a task worker


def queued(job: str, since: datetime) -> JobRun:
    return JobRun.objects.create(
        job=job,
        status=JobRun.Status.QUEUED,
        source=JobRun.Source.HTTP,
        correlation_id=f"{job}-queued",
        started_at=since,
        queued_at=since,
    )


def test_a_run_waiting_for_a_worker_shows_queued(clock: Clock) -> None:
    queued("manual", utc(2026, 11, 16, 11, 0))  # an hour ago: queue_timeout is 1 h

    status = status_of("manual")

    assert (status["state"], status["stalled"]) == ("queued", False)


def test_a_run_queued_past_its_queue_timeout_shows_the_job_stalled(
    clock: Clock, jobs: dict[str, Any]
) -> None:
    jobs["manual"] = {**JOBS["manual"], "queue_timeout": 600}
    queued("manual", utc(2026, 11, 16, 11, 49, 59))

    status = status_of("manual")

    assert (status["state"], status["stalled"]) == ("stalled", True)
    assert status["last_run"]["status"] == "queued"


def test_a_stalled_critical_job_makes_health_503_and_status_exit_2(
    client: Client, clock: Clock, jobs: dict[str, Any]
) -> None:
    jobs["manual"] = {**JOBS["manual"], "critical": True, "queue_timeout": 60}
    queued("manual", utc(2026, 11, 16, 11, 58))

    response = client.get("/health")
    with pytest.raises(CommandError) as raised:
        call_command("cronhooks", "status", stdout=StringIO())

    assert response.status_code == 503
    assert raised.value.returncode == 2
    assert "manual" in str(raised.value)


def test_a_stalled_job_that_is_not_critical_is_only_reported(
    client: Client, clock: Clock, jobs: dict[str, Any], auth: dict[str, str]
) -> None:
    jobs["manual"] = {**JOBS["manual"], "queue_timeout": 60}
    queued("manual", utc(2026, 11, 16, 11, 58))

    response = client.get("/health", headers=auth)

    assert response.status_code == 200
    assert response.json()["jobs"]["manual"]["state"] == "stalled"


def test_a_timed_out_run_counts_as_a_failure(clock: Clock) -> None:
    record("manual", "succeeded", utc(2026, 11, 16, 10, 0))
    record("manual", "timed_out", utc(2026, 11, 16, 11, 0))

    status = status_of("manual")

    assert (status["state"], status["failing"]) == ("failing", True)


# /health


def test_a_critical_overdue_job_makes_health_503_for_everyone(
    client: Client,
    clock: Clock,
    jobs: dict[str, Any],
    auth: dict[str, str],
) -> None:
    jobs["daily"] = {**JOBS["daily"], "critical": True}
    record("daily", "succeeded", utc(2026, 11, 15, 2, 6, 20))
    at(clock, utc(2026, 11, 16, 2, 21, 1))

    anonymous = client.get("/health")
    detail = client.get("/health", headers=auth)

    assert anonymous.status_code == detail.status_code == 503
    assert anonymous.json() == {"status": "unhealthy"}
    assert detail.json()["checks"]["critical_jobs"] == {
        "ok": False,
        "detail": "daily overdue",
    }
    assert detail.json()["jobs"]["daily"]["overdue"] is True


def test_a_critical_failing_job_makes_health_503(
    client: Client, clock: Clock, jobs: dict[str, Any]
) -> None:
    jobs["manual"] = {**JOBS["manual"], "critical": True}
    record("manual", "failed", utc(2026, 11, 16, 11, 0))

    response = client.get("/health")

    assert response.status_code == 503


@pytest.mark.parametrize("switch", ["job", "all jobs"])
def test_a_critical_job_switched_off_is_no_problem_however_it_last_ran(
    client: Client, clock: Clock, jobs: dict[str, Any], settings: Any, switch: str
) -> None:
    jobs["daily"] = {**JOBS["daily"], "critical": True}
    record("daily", "failed", utc(2026, 11, 10, 2, 6, 5))
    if switch == "job":
        jobs["daily"]["enabled"] = False
    else:
        settings.CRONHOOKS = {**settings.CRONHOOKS, "ENABLED": False}

    response = client.get("/health")

    assert response.status_code == 200
    assert job_statuses()["daily"].state == "disabled"
    status_command()  # exits 0: no CommandError


def test_an_overdue_job_that_is_not_critical_is_only_reported(
    client: Client, clock: Clock, auth: dict[str, str]
) -> None:
    record("every-5", "succeeded", utc(2026, 11, 16, 11, 55, 1))
    at(clock, utc(2026, 11, 16, 12, 6, 1))

    response = client.get("/health", headers=auth)

    assert response.status_code == 200
    job = response.json()["jobs"]["every-5"]
    assert (job["overdue"], job["critical"], job["state"]) == (True, False, "overdue")


def test_anonymous_health_reads_only_the_critical_jobs_runs(
    client: Client, clock: Clock, jobs: dict[str, Any]
) -> None:
    jobs["daily"] = {**JOBS["daily"], "critical": True}
    record("daily", "succeeded", utc(2026, 11, 16, 2, 6, 10))
    record("every-5", "failed", utc(2026, 11, 16, 11, 0))

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/health")

    history = [q["sql"] for q in queries if "cronhooks_jobrun" in q["sql"]]
    assert len(history) == 1
    assert "every-5" not in history[0]
    # every-5 is failing, but it is not critical.
    assert response.status_code == 200


# manage.py cronhooks status


def status_command(*args: str) -> str:
    out = StringIO()
    call_command("cronhooks", "status", *args, stdout=out)
    return out.getvalue()


def test_status_prints_a_row_per_job(clock: Clock) -> None:
    record("every-5", "succeeded", utc(2026, 11, 16, 12, 0, 1))
    record("manual", "failed", utc(2026, 11, 16, 10, 0))
    at(clock, utc(2026, 11, 16, 12, 3))

    lines = status_command().splitlines()

    assert lines[0].split() == [
        "JOB",
        "STATE",
        "CRITICAL",
        "LAST",
        "SUCCESS",
        "LAST",
        "FAILURE",
        "NEXT",
        "RUN",
    ]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["every-5"][1:3] == ["ok", "no"]
    assert rows["every-5"][3:5] == ["2026-11-16", "12:00:31"]
    assert rows["every-5"][-2:] == ["2026-11-16", "12:05:00"]
    assert rows["manual"][1] == "failing"
    assert rows["daily"][1] == "pending"


def test_status_exits_0_when_only_non_critical_jobs_are_overdue(
    clock: Clock,
) -> None:
    record("every-5", "succeeded", utc(2026, 11, 16, 12, 0, 1))
    at(clock, utc(2026, 11, 16, 12, 30))

    assert "overdue" in status_command()


def test_status_exits_2_when_a_critical_job_is_overdue(
    clock: Clock, jobs: dict[str, Any]
) -> None:
    jobs["weekly"] = {**JOBS["weekly"], "critical": True}
    record("weekly", "succeeded", utc(2026, 11, 9, 9, 0, 5))
    at(clock, utc(2026, 11, 16, 9, 15, 1))

    with pytest.raises(CommandError) as excinfo:
        status_command()

    assert excinfo.value.returncode == 2
    assert "weekly" in str(excinfo.value)


def test_status_json_is_the_health_job_report(
    client: Client, clock: Clock, auth: dict[str, str]
) -> None:
    record("every-5", "succeeded", utc(2026, 11, 16, 11, 55, 1))

    report = json.loads(status_command("--json"))

    assert report["every-5"]["last_success"]["correlation_id"] == "every-5-115501"
    assert report == client.get("/health", headers=auth).json()["jobs"]


def test_jobs_needing_attention_come_first_in_the_report(
    clock: Clock, jobs: dict[str, Any]
) -> None:
    jobs["critical-late"] = {**JOBS["every-5"], "critical": True}
    jobs["running"] = dict(JOBS["every-5"])
    record("critical-late", "succeeded", utc(2026, 11, 16, 11, 0))
    record("every-5", "succeeded", utc(2026, 11, 16, 11, 0))  # late, not critical
    record("daily", "succeeded", utc(2026, 11, 16, 2, 6))  # ok
    record("running", "running", utc(2026, 11, 16, 11, 59), seconds=None)

    # Problems (the critical one first), a run in progress, then the rest,
    # each group by name.
    assert list(job_report()) == [
        "critical-late",
        "every-5",
        "running",
        "daily",
        "manual",
        "weekly",
    ]
