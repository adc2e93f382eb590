"""GET /cron/metrics: the run history in the Prometheus text format, read
back with prometheus-client's own parser."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import timezone as tz
from typing import Any

import pytest
import time_machine
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from cronhooks.models import JobRun
from cronhooks.observability.metrics import counting_since, render_metrics
from cronhooks.pauses import pause_job
from cronhooks.redaction import redact

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 16, 12, 0, tzinfo=tz.utc)
MIDNIGHT = datetime(2026, 11, 16, tzinfo=tz.utc)
METRICS_TOKEN = "m" * 40

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(autouse=True)
def clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def record(
    job: str,
    status: str,
    started: datetime,
    seconds: float | None = 1,
    reason: str = "",
) -> JobRun:
    return JobRun.objects.create(
        job=job,
        status=status,
        source=JobRun.Source.HTTP,
        correlation_id="c",
        started_at=started,
        finished_at=None if seconds is None else started + timedelta(seconds=seconds),
        reason=reason,
    )


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: Client, headers: dict[str, str]) -> Samples:
    response = client.get("/cron/metrics", headers=headers)
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


# What is counted


def test_runs_total_counts_todays_runs_of_each_job_by_status(
    client: Client, auth: dict[str, str]
) -> None:
    for minute in range(3):
        record("ping", "succeeded", NOW - timedelta(minutes=minute + 1))
    record("ping", "failed", NOW - timedelta(hours=2))
    record("boom", "timed_out", MIDNIGHT)
    # Yesterday's: counted yesterday.
    record("ping", "succeeded", MIDNIGHT - timedelta(seconds=1))

    samples = scrape(client, auth)

    assert value(samples, "cronhooks_runs_total", job="ping", status="succeeded") == 3
    assert value(samples, "cronhooks_runs_total", job="ping", status="failed") == 1
    assert value(samples, "cronhooks_runs_total", job="boom", status="timed_out") == 1
    # Each count says where it starts: 00:00 UTC today.
    created = value(samples, "cronhooks_runs_created", job="ping", status="failed")
    assert created == MIDNIGHT.timestamp()


def test_counting_starts_at_midnight_utc_whatever_the_time_zone() -> None:
    later = datetime(2026, 11, 16, 1, 30, tzinfo=tz(timedelta(hours=5)))

    assert counting_since(later) == datetime(2026, 11, 15, tzinfo=tz.utc)


def test_refusals_are_counted_by_reason(client: Client, auth: dict[str, str]) -> None:
    pause_job("ping")
    for _ in range(2):
        assert client.post("/cron/ping", headers=auth).status_code == 503
    record("ping", "rejected", NOW - timedelta(minutes=5), reason="already_running")

    samples = scrape(client, auth)

    assert value(samples, "cronhooks_runs_total", job="ping", status="rejected") == 3
    assert (
        value(samples, "cronhooks_refusals_total", job="ping", reason="job_paused") == 2
    )
    assert (
        value(samples, "cronhooks_refusals_total", job="ping", reason="already_running")
        == 1
    )


def test_names_that_are_not_jobs_count_under_one_empty_job(
    client: Client, auth: dict[str, str]
) -> None:
    for name in ("nope", "also-nope", "x" * 80):
        assert client.post(f"/cron/{name}", headers=auth).status_code == 404
    record("gone", "succeeded", NOW - timedelta(minutes=1))

    samples = scrape(client, auth)

    assert value(samples, "cronhooks_refusals_total", job="", reason="unknown_job") == 3
    assert not any("nope" in str(key) or "gone" in str(key) for key in samples)


def test_durations_are_a_histogram_of_the_timed_runs(
    client: Client, auth: dict[str, str]
) -> None:
    record("ping", "succeeded", NOW - timedelta(hours=1), seconds=0.05)
    record("ping", "failed", NOW - timedelta(hours=2), seconds=2)
    record("ping", "timed_out", NOW - timedelta(hours=3), seconds=100)
    # Neither has a duration worth measuring.
    record("ping", "abandoned", NOW - timedelta(hours=4), seconds=5000)
    record("ping", "running", NOW - timedelta(seconds=10), seconds=None)

    samples = scrape(client, auth)

    def bucket(le: str) -> float | None:
        return value(
            samples, "cronhooks_run_duration_seconds_bucket", job="ping", le=le
        )

    assert bucket("0.1") == 1
    assert bucket("1.0") == 1
    assert bucket("5.0") == 2
    assert bucket("60.0") == 2
    assert bucket("300.0") == 3
    assert bucket("+Inf") == 3
    assert value(samples, "cronhooks_run_duration_seconds_count", job="ping") == 3
    total = value(samples, "cronhooks_run_duration_seconds_sum", job="ping")
    assert total == pytest.approx(102.05)


def test_a_job_without_timed_runs_has_no_histogram(
    client: Client, auth: dict[str, str]
) -> None:
    record("ping", "rejected", NOW - timedelta(minutes=1), reason="rate_limited")

    samples = scrape(client, auth)

    assert value(samples, "cronhooks_run_duration_seconds_count", job="ping") is None


# Where each job stands


def test_last_success_is_when_it_finished_and_absent_before_any(
    client: Client, auth: dict[str, str]
) -> None:
    run = record("ping", "succeeded", MIDNIGHT - timedelta(days=3), seconds=30)

    samples = scrape(client, auth)

    assert run.finished_at is not None
    assert (
        value(samples, "cronhooks_last_success_timestamp_seconds", job="ping")
        == run.finished_at.timestamp()
    )
    assert (
        value(samples, "cronhooks_last_success_timestamp_seconds", job="boom") is None
    )


def test_overdue_paused_running_and_queued_are_gauges_of_every_job(
    client: Client, auth: dict[str, str]
) -> None:
    # ee-recent runs every five minutes; its last success was a day ago.
    record("ee-recent", "succeeded", NOW - timedelta(days=1))
    record("ping", "running", NOW - timedelta(seconds=10), seconds=None)
    queued = record("echo", "queued", NOW - timedelta(seconds=10), seconds=None)
    queued.queued_at = queued.started_at
    queued.save()
    pause_job("boom")

    samples = scrape(client, auth)

    assert value(samples, "cronhooks_job_overdue", job="ee-recent") == 1
    assert value(samples, "cronhooks_job_overdue", job="ping") == 0
    assert value(samples, "cronhooks_job_paused", job="boom") == 1
    assert value(samples, "cronhooks_job_paused", job="ping") == 0
    assert value(samples, "cronhooks_runs_in_progress", job="ping") == 1
    assert value(samples, "cronhooks_runs_in_progress", job="echo") == 0
    assert value(samples, "cronhooks_runs_queued", job="echo") == 1
    assert value(samples, "cronhooks_runs_queued", job="ping") == 0


def test_a_paused_job_is_not_overdue(client: Client, auth: dict[str, str]) -> None:
    record("ee-recent", "succeeded", NOW - timedelta(days=1))
    pause_job("ee-recent")

    samples = scrape(client, auth)

    assert value(samples, "cronhooks_job_overdue", job="ee-recent") == 0
    assert value(samples, "cronhooks_job_paused", job="ee-recent") == 1


def test_a_dead_holders_run_is_not_in_progress(
    client: Client, auth: dict[str, str]
) -> None:
    # Running for longer than its lock TTL, and its lock is not held.
    record("ping", "running", NOW - timedelta(hours=2), seconds=None)

    samples = scrape(client, auth)

    assert value(samples, "cronhooks_runs_in_progress", job="ping") == 0


def test_a_scrape_costs_three_queries_whatever_the_history(
    client: Client, auth: dict[str, str]
) -> None:
    with CaptureQueriesContext(connection) as empty:
        scrape(client, auth)
    for hour in range(1, 11):
        for job in ("ping", "boom", "echo"):
            record(job, "succeeded", NOW - timedelta(hours=hour))
            record(job, "rejected", NOW - timedelta(hours=hour), reason="rate_limited")
    pause_job("boom")

    with CaptureQueriesContext(connection) as full:
        scrape(client, auth)

    # Today's runs grouped, each job's last runs, the open pauses.
    assert len(full) == len(empty) == 3


# Who may read them


def test_anonymous_scrapes_are_refused_401_in_json(client: Client) -> None:
    response = client.get("/cron/metrics")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "unauthorized"


def test_a_wrong_token_is_refused_and_counted_as_a_failure(
    client: Client, json_lines: Any
) -> None:
    response = client.get(
        "/cron/metrics", headers={"Authorization": f"Bearer {'w' * 40}"}
    )

    assert response.status_code == 401
    assert "metrics_auth_failed" in [line["message"] for line in json_lines()]


def test_a_metrics_token_reads_the_metrics_and_nothing_else(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "METRICS_TOKENS": [METRICS_TOKEN]}
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}

    assert client.get("/cron/metrics", headers=headers).status_code == 200
    assert client.post("/cron/ping", headers=headers).status_code == 401
    assert client.get("/cron/runs/x", headers=headers).status_code == 401
    assert "checks" not in client.get("/health", headers=headers).json()
    assert not JobRun.objects.exists()


def test_a_metrics_token_as_one_str(client: Client, settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "METRICS_TOKENS": METRICS_TOKEN}
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}

    assert client.get("/cron/metrics", headers=headers).status_code == 200


def test_a_malformed_authorization_header_is_refused_401(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "METRICS_TOKENS": [METRICS_TOKEN]}

    response = client.get("/cron/metrics", headers={"Authorization": "Basic eDp5"})

    assert response.status_code == 401


def test_only_get_and_head_read_the_metrics(
    client: Client, auth: dict[str, str]
) -> None:
    response = client.post("/cron/metrics", headers=auth)

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    # "metrics" is no job: the POST ran and recorded nothing.
    assert not JobRun.objects.exists()
    assert client.head("/cron/metrics", headers=auth).status_code == 200


def test_the_answer_is_prometheus_text(client: Client, auth: dict[str, str]) -> None:
    response = client.get(
        "/cron/metrics", headers={**auth, "X-Correlation-ID": "scrape-1"}
    )

    assert response["Content-Type"].startswith("text/plain; version=")
    assert response["X-Correlation-ID"] == "scrape-1"
    assert b"# TYPE cronhooks_runs_total counter" in response.content


def test_without_prometheus_client_it_answers_503(
    client: Client, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)

    response = client.get("/cron/metrics", headers=auth)

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "metrics_unavailable"
    assert "django-cronhooks[metrics]" in error["message"]


def test_with_the_database_down_it_answers_503(
    client: Client, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(now: Any = None) -> bytes:
        raise DatabaseError("connection refused")

    monkeypatch.setattr("cronhooks.observability.metrics.render_metrics", down)

    response = client.get("/cron/metrics", headers=auth)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "backend_unavailable"


def test_render_metrics_at_a_given_time() -> None:
    record("ping", "succeeded", NOW - timedelta(days=1, minutes=1))

    yesterday = parse(render_metrics(NOW - timedelta(days=1)).decode())
    today = parse(render_metrics().decode())

    assert value(yesterday, "cronhooks_runs_total", job="ping", status="succeeded") == 1
    assert value(today, "cronhooks_runs_total", job="ping", status="succeeded") is None


def test_a_metrics_token_is_redacted_like_any_token(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "METRICS_TOKENS": [METRICS_TOKEN]}

    assert redact(f"sent {METRICS_TOKEN} by mistake") == "sent [redacted] by mistake"
