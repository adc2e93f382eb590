"""cronhooks.alerts: failures and recoveries reach people, heartbeats reach
monitors, and neither ever changes or holds up a run's own answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
import responses
from django.core import mail
from django.test import Client

from cronhooks.alerts import Alert, AlertBackend
from cronhooks.alerts.email import EmailAlertBackend
from cronhooks.alerts.slack import SlackAlertBackend
from cronhooks.jobs import parse_job
from cronhooks.models import JobRun
from cronhooks.testing import trigger
from tests.conftest import JsonLines, PostgresProxy
from tests.settings import TOKEN
from tests.test_checks import check_error_codes, check_errors
from tests.testapp.jobs import FLAKY
from tests.testapp.locks import HOOKS

SLACK_URL = "https://hooks.slack.example/services/T000/B000/not-a-real-secret"
OTHER_SLACK_URL = "https://hooks.slack.example/services/T000/B111/another-secret"
HEARTBEAT_URL = "https://hc-ping.example/0f6ea4a5-5cbb-4b21-a1b5-7a3c1e0c6a11"
BOOM_ERROR = "CommandError: the upstream API said no"
SLACK = {
    "BACKEND": "cronhooks.alerts.slack.SlackAlertBackend",
    "OPTIONS": {"WEBHOOK_URL": SLACK_URL},
}
# The example project's demo job: fails with ?fail=true, succeeds otherwise.
DEMO = {"command": "demo_job", "params": {"fail": {"type": "bool"}}}


class RecordingBackend(AlertBackend):
    """Keeps what it is sent, to show exactly what a backend receives."""

    received: ClassVar[list[Alert]] = []

    def send(self, alert: Alert) -> None:
        self.received.append(alert)


class BuggyBackend(AlertBackend):
    option_names = frozenset({"API_KEY"})

    def secrets(self) -> list[str]:
        return [self.options["API_KEY"]]

    def send(self, alert: Alert) -> None:
        raise ValueError(f"cannot use key {self.options['API_KEY']} with {TOKEN}")


class UnbuildableBackend(AlertBackend):
    def __init__(self, alias: str, options: Mapping[str, Any]) -> None:
        raise RuntimeError(f"cannot start with {TOKEN} and {dict(options)}")

    def send(self, alert: Alert) -> None:
        raise AssertionError("never built")


def configure(settings: Any, *, alerts: object = None, **jobs: object) -> None:
    """Slack alerts (unless ``alerts`` says otherwise) and extra jobs."""
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "ALERTS": {"slack": SLACK} if alerts is None else alerts,
        "JOBS": {**settings.CRONHOOKS["JOBS"], "demo": DEMO, **jobs},
    }


def join_deliveries() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith(("cronhooks-alert-", "cronhooks-heartbeat-")):
            thread.join(timeout=10)


@pytest.fixture
def release() -> threading.Event:
    """What a blocking webhook waits for."""
    return threading.Event()


@pytest.fixture
def mock(release: threading.Event) -> Iterator[responses.RequestsMock]:
    """Slack and the heartbeat monitor, answering 200 unless a test says so.

    Delivery threads may outlive a run's answer: they are let go and finished
    here, before the mock stops intercepting their requests.
    """
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.post(SLACK_URL, body="ok")
        mocked.post(OTHER_SLACK_URL, body="ok")
        for path in ("", "/start", "/fail"):
            mocked.post(HEARTBEAT_URL + path, body="OK")
        try:
            yield mocked
        finally:
            release.set()
            join_deliveries()


@pytest.fixture(autouse=True)
def _nothing_received() -> None:
    RecordingBackend.received.clear()


def body(call: responses.Call) -> str:
    content = call.request.body
    assert isinstance(content, bytes)
    return content.decode()


def slack_posts(mock: responses.RequestsMock, url: str = SLACK_URL) -> list[Any]:
    return [json.loads(body(call)) for call in mock.calls if call.request.url == url]


def slack_text(payload: dict[str, Any]) -> str:
    """Everything a reader sees: the preview text and every block's text."""
    texts = [payload["text"]]
    for block in payload["blocks"]:
        if "text" in block:
            texts.append(block["text"]["text"])
        texts.extend(field["text"] for field in block.get("fields", []))
    return "\n".join(texts)


def urls(mock: responses.RequestsMock) -> list[str]:
    return [str(call.request.url) for call in mock.calls]


# What a failure alert says


@pytest.mark.django_db
def test_a_failed_run_posts_job_error_correlation_id_duration_and_admin_link(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    configure(settings)
    settings.CRONHOOKS = {**settings.CRONHOOKS, "BASE_URL": "https://app.example/"}

    response = trigger(client, "boom", headers={"X-Correlation-ID": "tick-42"})

    assert response.status_code == 500
    run = JobRun.objects.get()
    [payload] = slack_posts(mock)
    text = slack_text(payload)
    assert payload["text"] == f":rotating_light: Job boom failed: {BOOM_ERROR}"
    assert "*Job*\n`boom`" in text
    assert f"```{BOOM_ERROR}```" in text
    assert "*Correlation ID*\n`tick-42`" in text
    assert f"*Duration*\n{run.duration_ms} ms" in text
    assert "*Environment*\nproduction" in text
    admin = f"https://app.example/admin/cronhooks/jobrun/{run.id}/change/"
    assert f"*Run*\n<{admin}|{run.id}>" in text


@pytest.mark.django_db
def test_without_base_url_the_alert_gives_the_admin_path(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    configure(settings)

    trigger(client, "boom")

    run = JobRun.objects.get()
    [payload] = slack_posts(mock)
    assert f"/admin/cronhooks/jobrun/{run.id}/change/" in slack_text(payload)
    assert "http" not in slack_text(payload)


@pytest.mark.django_db
def test_the_webhook_is_posted_with_alert_timeout_as_its_timeout(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    configure(settings)
    settings.CRONHOOKS = {**settings.CRONHOOKS, "ALERT_TIMEOUT": 1.5}

    trigger(client, "boom")

    [call] = mock.calls
    # responses keeps the keyword arguments requests sent with.
    assert call.request.req_kwargs["timeout"] == 1.5  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_a_backend_is_given_the_runs_facts_as_an_alert(
    client: Client, settings: Any
) -> None:
    configure(
        settings,
        alerts={"record": {"BACKEND": f"{__name__}.RecordingBackend"}},
    )
    settings.CRONHOOKS = {**settings.CRONHOOKS, "ENVIRONMENT": "staging"}

    trigger(client, "boom", headers={"X-Correlation-ID": "tick-7"})

    run = JobRun.objects.get()
    assert RecordingBackend.received == [
        Alert(
            kind="failure",
            job="boom",
            run_id=run.run_id,
            status="failed",
            error=BOOM_ERROR,
            correlation_id="tick-7",
            duration_ms=run.duration_ms,
            started_at=run.started_at,
            admin_url=f"/admin/cronhooks/jobrun/{run.id}/change/",
            environment="staging",
        )
    ]


# When alerts are sent


@pytest.mark.django_db
def test_the_first_success_after_a_failure_is_a_recovery_and_the_next_is_silent(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    configure(settings)

    assert trigger(client, "demo", query={"fail": "true"}).status_code == 500
    assert trigger(client, "demo", query={"fail": "false"}).status_code == 200
    assert trigger(client, "demo", query={"fail": "false"}).status_code == 200

    failure, recovery = slack_posts(mock)
    assert failure["text"].startswith(":rotating_light: Job demo failed: CommandError")
    assert recovery["text"] == ":white_check_mark: Job demo recovered"
    assert "Error" not in slack_text(recovery)


@pytest.mark.django_db
def test_a_refused_trigger_between_failure_and_success_does_not_hide_the_recovery(
    client: Client, settings: Any
) -> None:
    configure(settings, alerts={"record": {"BACKEND": f"{__name__}.RecordingBackend"}})

    trigger(client, "demo", query={"fail": "true"})
    assert trigger(client, "demo", query={"fail": "maybe"}).status_code == 400
    trigger(client, "demo")

    assert [alert.kind for alert in RecordingBackend.received] == [
        "failure",
        "recovery",
    ]


@pytest.mark.django_db
def test_a_success_after_an_abandoned_run_is_a_recovery(
    client: Client, settings: Any
) -> None:
    configure(settings, alerts={"record": {"BACKEND": f"{__name__}.RecordingBackend"}})
    trigger(client, "ping")
    JobRun.objects.update(status=JobRun.Status.ABANDONED)

    trigger(client, "ping")

    [alert] = RecordingBackend.received
    assert alert.kind == "recovery"


@pytest.mark.django_db
def test_a_success_with_no_failure_before_it_sends_nothing(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    configure(settings)

    assert trigger(client, "ping").status_code == 200
    assert trigger(client, "ping").status_code == 200

    assert len(mock.calls) == 0


@pytest.mark.django_db
def test_without_alerts_configured_nothing_is_sent(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    configure(settings, alerts={})

    trigger(client, "boom")

    assert len(mock.calls) == 0


@pytest.mark.django_db
def test_a_job_with_alerts_false_sends_none(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    configure(settings, quiet={"command": "boom", "alerts": False})

    trigger(client, "quiet")

    assert len(mock.calls) == 0


@pytest.mark.django_db
def test_an_empty_webhook_url_switches_slack_off_silently(
    client: Client, settings: Any, mock: responses.RequestsMock, json_lines: JsonLines
) -> None:
    empty = {"BACKEND": SLACK["BACKEND"], "OPTIONS": {"WEBHOOK_URL": ""}}
    configure(settings, alerts={"slack": empty})

    trigger(client, "boom")

    assert len(mock.calls) == 0
    assert not [line for line in json_lines() if "alert" in line["message"]]


@pytest.mark.django_db
def test_a_jobs_own_webhook_url_replaces_the_default(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    configure(
        settings,
        team={"command": "boom", "alerts": {"slack": {"WEBHOOK_URL": OTHER_SLACK_URL}}},
    )

    trigger(client, "team")
    trigger(client, "boom")

    assert urls(mock) == [OTHER_SLACK_URL, SLACK_URL]
    assert slack_posts(mock, OTHER_SLACK_URL)[0]["text"].startswith(
        ":rotating_light: Job team failed"
    )


@pytest.mark.django_db
def test_a_misconfigured_channel_is_logged_and_the_others_still_send(
    client: Client, settings: Any, mock: responses.RequestsMock, json_lines: JsonLines
) -> None:
    configure(
        settings, alerts={"broken": {"BACKEND": "no.such.Backend"}, "slack": SLACK}
    )

    response = trigger(client, "boom")

    assert response.status_code == 500
    assert len(slack_posts(mock)) == 1
    [line] = [
        line
        for line in json_lines()
        if line["message"] == "alert_backend_misconfigured"
    ]
    assert line["alias"] == "broken"
    assert "no.such.Backend" in line["error"]


# Email, and backends of your own


@pytest.mark.django_db
def test_the_email_backend_mails_the_alert_to_its_recipients(
    client: Client, settings: Any
) -> None:
    email = {
        "BACKEND": "cronhooks.alerts.email.EmailAlertBackend",
        "OPTIONS": {
            "RECIPIENTS": ["ops@example.com"],
            "FROM_EMAIL": "cron@example.com",
        },
    }
    # The test environment already sends mail to mail.outbox (and Django 6.1
    # deprecates setting EMAIL_BACKEND).
    configure(settings, alerts={"email": email})

    trigger(client, "boom", headers={"X-Correlation-ID": "tick-9"})

    run = JobRun.objects.get()
    [message] = mail.outbox
    assert message.subject == "[production] Job boom failed"
    assert message.to == ["ops@example.com"]
    assert message.from_email == "cron@example.com"
    assert "Correlation ID: tick-9" in message.body
    assert f"Run:            /admin/cronhooks/jobrun/{run.id}/change/" in message.body
    assert message.body.endswith(f"Error:\n{BOOM_ERROR}\n")


# A failing or slow channel changes nothing for the run


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 500, "body": "no_service"}, id="500"),
        pytest.param({"status": 404, "body": "no_team"}, id="404"),
        pytest.param({"body": requests.exceptions.ConnectTimeout()}, id="connect"),
        pytest.param({"body": requests.exceptions.ReadTimeout()}, id="read"),
    ],
)
@pytest.mark.django_db
def test_a_failing_webhook_leaves_the_answer_as_is_and_is_logged_without_its_url(
    client: Client,
    settings: Any,
    mock: responses.RequestsMock,
    json_lines: JsonLines,
    failure: dict[str, Any],
) -> None:
    configure(settings)
    mock.replace(responses.POST, SLACK_URL, **failure)

    response = trigger(client, "boom", headers={"X-Correlation-ID": "tick-13"})

    assert response.status_code == 500
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"] == {"code": "job_failed", "message": BOOM_ERROR}
    assert len(mock.calls) == 1
    [line] = [line for line in json_lines() if line["message"] == "alert_failed"]
    assert line["alias"] == "slack"
    assert line["kind"] == "failure"
    # Logged from the delivery thread, with the run's context.
    assert (line["job"], line["correlation_id"]) == ("boom", "tick-13")
    assert line["status_code"] == failure.get("status")
    assert "/services/" not in json.dumps(json_lines())


@pytest.mark.django_db
def test_a_failing_webhook_on_recovery_leaves_the_success_a_success(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    configure(settings)
    mock.replace(responses.POST, SLACK_URL, status=500)
    trigger(client, "demo", query={"fail": "true"})

    response = trigger(client, "demo")

    assert response.status_code == 200
    assert response.json()["output"] == "succeeded\n"
    assert len(mock.calls) == 2


@pytest.mark.django_db
def test_a_webhook_that_hangs_does_not_hold_the_answer_past_alert_timeout(
    client: Client,
    settings: Any,
    mock: responses.RequestsMock,
    release: threading.Event,
    json_lines: JsonLines,
) -> None:
    configure(settings)
    settings.CRONHOOKS = {**settings.CRONHOOKS, "ALERT_TIMEOUT": 0.2}
    reached = threading.Event()

    def hang(request: Any) -> tuple[int, dict[str, str], str]:
        reached.set()
        release.wait(timeout=30)
        return 200, {}, "ok"

    mock.remove(responses.POST, SLACK_URL)
    mock.add_callback(responses.POST, SLACK_URL, callback=hang)

    response = trigger(client, "boom")

    # Answered while the webhook was still being waited on.
    still_posting = [
        thread.name for thread in threading.enumerate() if thread.is_alive()
    ]
    assert response.status_code == 500
    assert response.json()["error"]["message"] == BOOM_ERROR
    assert reached.is_set()
    assert "cronhooks-alert-slack" in still_posting
    [slow] = [line for line in json_lines() if line["message"] == "alert_delivery_slow"]
    assert slow["pending"] == ["cronhooks-alert-slack"]

    release.set()
    join_deliveries()
    assert "alert_sent" in [line["message"] for line in json_lines()]


@pytest.mark.django_db
def test_a_backend_bug_is_logged_without_its_secrets_and_changes_nothing(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    buggy = {"BACKEND": f"{__name__}.BuggyBackend", "OPTIONS": {"API_KEY": "k-s3cret"}}
    configure(settings, alerts={"buggy": buggy})

    response = trigger(client, "boom")

    assert response.json()["error"]["message"] == BOOM_ERROR
    [line] = [line for line in json_lines() if line["message"] == "alert_failed"]
    assert line["error"] == "ValueError"
    assert "cannot use key [redacted] with [redacted]" in line["traceback"]
    assert "k-s3cret" not in json.dumps(json_lines())
    assert TOKEN not in json.dumps(json_lines())


@pytest.mark.django_db
def test_a_backend_that_cannot_be_built_is_logged_and_changes_nothing(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    odd = {
        "BACKEND": f"{__name__}.UnbuildableBackend",
        "OPTIONS": {"URL": SLACK_URL},
    }
    configure(settings, alerts={"odd": odd})

    response = trigger(client, "boom")

    assert response.status_code == 500
    assert response.json()["error"]["message"] == BOOM_ERROR
    [line] = [line for line in json_lines() if line["message"] == "alerts_failed"]
    assert line["error"] == "RuntimeError"
    assert "cannot start with [redacted] and {'URL': '[redacted]'}" in line["traceback"]
    assert SLACK_URL not in json.dumps(json_lines())


# Secrets


@pytest.mark.django_db
def test_a_token_in_the_jobs_error_is_not_in_the_alert(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    configure(settings, leaky={"callable": "tests.testapp.jobs.leak"})

    trigger(client, "leaky")

    [payload] = slack_posts(mock)
    assert "Bearer [redacted]" in slack_text(payload)
    assert TOKEN not in json.dumps(payload)


@pytest.mark.django_db
def test_the_webhook_url_is_in_no_log_line_run_record_or_answer(
    client: Client, settings: Any, mock: responses.RequestsMock, json_lines: JsonLines
) -> None:
    configure(settings)

    response = trigger(client, "boom")

    assert len(mock.calls) == 1
    record = json.dumps(list(JobRun.objects.values()), default=str)
    for text in (response.content.decode(), record, json.dumps(json_lines())):
        assert "not-a-real-secret" not in text
    assert "alert_sent" in [line["message"] for line in json_lines()]


def test_a_backends_repr_does_not_show_its_options() -> None:
    backend = SlackAlertBackend("slack", {"WEBHOOK_URL": SLACK_URL})

    assert repr(backend) == "<SlackAlertBackend 'slack'>"


def failure(**fields: Any) -> Alert:
    """A failure alert of job boom; ``fields`` say what the test is about."""
    defaults: dict[str, Any] = {
        "kind": "failure",
        "job": "boom",
        "run_id": "r",
        "status": "failed",
        "error": "",
        "correlation_id": "c",
        "duration_ms": 1,
        "started_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "admin_url": "",
    }
    return Alert(**{**defaults, **fields})


def test_slack_shows_an_error_as_written_without_pinging_anyone() -> None:
    alert = failure(
        error="RuntimeError: <!channel> look & see <https://evil.example|here>",
        duration_ms=61_500,
    )

    text = slack_text(SlackAlertBackend("slack", {}).payload(alert))

    assert "<!channel>" not in text
    assert "&lt;!channel&gt; look &amp; see &lt;https://evil.example|here&gt;" in text
    assert "*Duration*\n1 min 2 s" in text


@pytest.mark.parametrize(
    ("duration_ms", "shown"),
    [(None, "unknown"), (850, "850 ms"), (12_345, "12.3 s"), (245_000, "4 min 5 s")],
)
def test_an_email_alert_gives_the_duration_as_a_person_reads_it(
    duration_ms: int | None, shown: str
) -> None:
    alert = failure(status="timed_out", duration_ms=duration_ms)

    body = EmailAlertBackend("email", {"RECIPIENTS": ["ops@example.com"]}).body(alert)

    assert f"Duration:       {shown}\n" in body
    assert body.startswith("Job boom timed out.\n")
    assert "Error:" not in body  # none was recorded


def test_an_alert_says_when_the_run_lost_its_lock_and_which_attempt_it_was() -> None:
    alert = failure(error="RuntimeError: x", attempt=3, lock_lost=True)

    body = EmailAlertBackend("email", {"RECIPIENTS": ["ops@example.com"]}).body(alert)

    assert "Status:         failed (attempt 3, lock lost)\n" in body


@pytest.mark.django_db
def test_a_recovery_email_has_no_error_section(client: Client, settings: Any) -> None:
    email = {
        "BACKEND": "cronhooks.alerts.email.EmailAlertBackend",
        # A single address as a string is mailed too (the check still asks
        # for a list).
        "OPTIONS": {"RECIPIENTS": "ops@example.com"},
    }
    configure(settings, alerts={"email": email})
    trigger(client, "demo", body={"fail": True})

    trigger(client, "demo", body={"fail": False})

    failure, recovery = mail.outbox
    assert recovery.subject == "[production] Job demo recovered"
    assert recovery.to == ["ops@example.com"]
    assert "Error:" in failure.body
    assert "Error:" not in recovery.body


@pytest.mark.django_db
def test_without_the_admin_an_alert_names_the_run_by_its_id(
    client: Client, settings: Any
) -> None:
    settings.ROOT_URLCONF = "tests.urls_without_admin"
    configure(settings, alerts={"record": {"BACKEND": f"{__name__}.RecordingBackend"}})

    trigger(client, "boom")

    run = JobRun.objects.get()
    [alert] = RecordingBackend.received
    assert alert.admin_url == ""
    assert alert.run_id == run.run_id


@pytest.mark.django_db(transaction=True, databases=["default", "postgres", "proxied"])
def test_a_recovery_that_cannot_be_told_for_the_history_being_down_is_logged(
    client: Client,
    settings: Any,
    proxied_history: PostgresProxy,
    json_lines: JsonLines,
) -> None:
    # Whether a success is a recovery is read from the run history: cut away
    # once the run is recorded, the success stands and no alert is guessed.
    configure(settings, alerts={"record": {"BACKEND": f"{__name__}.RecordingBackend"}})
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {
            "BACKEND": "tests.testapp.locks.HookedDatabaseLockBackend",
            "OPTIONS": {"DATABASE": "default"},
        },
    }
    assert trigger(client, "demo", body={"fail": True}).status_code == 500
    HOOKS["before_release"] = proxied_history.stop

    try:
        response = trigger(client, "demo", body={"fail": False})
    finally:
        HOOKS.clear()

    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    join_deliveries()
    assert [alert.kind for alert in RecordingBackend.received] == ["failure"]
    [line] = [
        line for line in json_lines() if line["message"] == "alert_history_unavailable"
    ]
    assert line["level"] == "ERROR"
    proxied_history.restart()


# Heartbeats


@pytest.mark.django_db
def test_a_successful_run_pings_start_then_success(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    configure(
        settings,
        alerts={},
        beat={"command": "demo_job", "heartbeat_url": HEARTBEAT_URL},
    )

    assert trigger(client, "beat").status_code == 200

    run = JobRun.objects.get()
    assert urls(mock) == [f"{HEARTBEAT_URL}/start", HEARTBEAT_URL]
    assert [body(call) for call in mock.calls] == [run.run_id] * 2


@pytest.mark.django_db
def test_signals_go_before_a_heartbeat_urls_query_string(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    url = f"{HEARTBEAT_URL}?rid=abc"
    configure(settings, alerts={}, beat={"command": "boom", "heartbeat_url": url})

    trigger(client, "beat")

    assert urls(mock) == [
        f"{HEARTBEAT_URL}/start?rid=abc",
        f"{HEARTBEAT_URL}/fail?rid=abc",
    ]


@pytest.mark.django_db
def test_a_failing_monitor_with_a_query_string_is_logged_without_its_url(
    client: Client,
    settings: Any,
    mock: responses.RequestsMock,
    json_lines: JsonLines,
) -> None:
    url = f"{HEARTBEAT_URL}?rid=abc"
    configure(settings, alerts={}, beat={"command": "boom", "heartbeat_url": url})
    # A bug whose message quotes the URL, query string and all.
    mock.replace(
        responses.POST,
        f"{HEARTBEAT_URL}/start",
        body=ValueError(f"cannot reach {HEARTBEAT_URL}/start?rid=abc of {url}"),
    )

    trigger(client, "beat")

    [failed] = [line for line in json_lines() if line["message"] == "heartbeat_failed"]
    # The query string goes too, like that of any URL in text cronhooks writes.
    assert (
        "cannot reach [redacted]/start?[redacted] of [redacted]" in failed["traceback"]
    )
    assert HEARTBEAT_URL not in json.dumps(json_lines())


def test_a_jobs_repr_hides_its_heartbeat_and_webhook_urls() -> None:
    job = parse_job(
        "beat",
        {
            "command": "boom",
            "heartbeat_url": HEARTBEAT_URL,
            "alerts": {"slack": {"WEBHOOK_URL": SLACK_URL}},
        },
    )

    assert HEARTBEAT_URL not in repr(job)
    assert SLACK_URL not in repr(job)
    assert job.heartbeat_url == HEARTBEAT_URL


@pytest.mark.django_db
def test_a_failed_run_pings_start_then_fail_with_the_error(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    leaky = {"callable": "tests.testapp.jobs.leak", "heartbeat_url": HEARTBEAT_URL}
    configure(settings, alerts={}, beat=leaky)

    assert trigger(client, "beat").status_code == 500

    run = JobRun.objects.get()
    assert urls(mock) == [f"{HEARTBEAT_URL}/start", f"{HEARTBEAT_URL}/fail"]
    fail_body = body(mock.calls[1])
    assert fail_body == f"{run.run_id}\n{run.error}"
    assert "Bearer [redacted]" in fail_body


@pytest.mark.django_db
def test_heartbeats_are_sent_even_for_a_job_with_alerts_false(
    client: Client, settings: Any, mock: responses.RequestsMock
) -> None:
    configure(
        settings,
        beat={"command": "boom", "alerts": False, "heartbeat_url": HEARTBEAT_URL},
    )

    trigger(client, "beat")

    assert urls(mock) == [f"{HEARTBEAT_URL}/start", f"{HEARTBEAT_URL}/fail"]


@pytest.mark.django_db
def test_a_failing_monitor_is_logged_without_its_url_and_changes_nothing(
    client: Client, settings: Any, mock: responses.RequestsMock, json_lines: JsonLines
) -> None:
    configure(settings, beat={"command": "demo_job", "heartbeat_url": HEARTBEAT_URL})
    mock.replace(responses.POST, f"{HEARTBEAT_URL}/start", status=503)
    mock.replace(
        responses.POST, HEARTBEAT_URL, body=requests.exceptions.ConnectionError()
    )

    response = trigger(client, "beat")

    assert response.status_code == 200
    failed = [line for line in json_lines() if line["message"] == "heartbeat_failed"]
    assert [(line["signal"], line["status_code"]) for line in failed] == [
        ("start", 503),
        ("success", None),
    ]
    assert "0f6ea4a5" not in json.dumps(json_lines())


@pytest.mark.django_db(transaction=True)
def test_a_failed_attempt_that_is_retried_sends_no_fail_ping(
    client: Client, settings: Any, mock: responses.RequestsMock, tmp_path: Path
) -> None:
    # The monitor is told the outcome of the last attempt only: the retry may
    # still succeed.
    flaky = {**FLAKY, "retries": 1, "retry_delay": 0, "heartbeat_url": HEARTBEAT_URL}
    configure(settings, alerts={}, flaky=flaky)

    response = trigger(client, "flaky", query={"path": str(tmp_path / "count")})

    assert response.status_code == 202
    join_deliveries()
    statuses = JobRun.objects.order_by("attempt").values_list("status", flat=True)
    assert list(statuses) == ["failed", "succeeded"]
    assert sorted(urls(mock)) == [HEARTBEAT_URL, *[f"{HEARTBEAT_URL}/start"] * 2]


# System checks: cronhooks.E013, E023, E024


def alerting(alerts: object, **jobs: object) -> dict[str, Any]:
    return {"TOKENS": [TOKEN], "ALERTS": alerts, "JOBS": jobs}


@pytest.mark.parametrize(
    "alerts",
    [
        pytest.param({}, id="none"),
        pytest.param({"slack": SLACK}, id="slack"),
        pytest.param(
            {"slack": {"BACKEND": SLACK["BACKEND"], "OPTIONS": {"WEBHOOK_URL": ""}}},
            id="slack-switched-off",
        ),
        pytest.param(
            {
                "email": {
                    "BACKEND": "cronhooks.alerts.email.EmailAlertBackend",
                    "OPTIONS": {"RECIPIENTS": ["ops@example.com"]},
                }
            },
            id="email",
        ),
        pytest.param({"mine": {"BACKEND": f"{__name__}.RecordingBackend"}}, id="own"),
    ],
)
def test_valid_alert_settings_pass_the_checks(alerts: dict[str, Any]) -> None:
    assert check_error_codes(alerting(alerts)) == []


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(SLACK_URL, id="not-a-dict"),
        pytest.param({"OPTIONS": {}}, id="no-backend"),
        pytest.param({**SLACK, "OPTION": {}}, id="unknown-key"),
        pytest.param({"BACKEND": SLACK["BACKEND"], "OPTIONS": [SLACK_URL]}, id="list"),
        pytest.param({"BACKEND": "cronhooks.alerts.nope.Backend"}, id="no-module"),
        pytest.param(
            {"BACKEND": "cronhooks.locks.database.DatabaseLockBackend"},
            id="not-an-alert-backend",
        ),
    ],
)
def test_an_alert_channel_that_cannot_be_loaded_is_E013(entry: object) -> None:
    assert check_error_codes(alerting({"slack": entry})) == ["cronhooks.E013"]


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(
            {
                "BACKEND": SLACK["BACKEND"],
                "OPTIONS": {"WEBHOOK_URL": "http://x.example/"},
            },
            id="slack-not-https",
        ),
        pytest.param(
            {"BACKEND": SLACK["BACKEND"], "OPTIONS": {"URL": SLACK_URL}},
            id="slack-unknown-option",
        ),
        pytest.param(
            {"BACKEND": "cronhooks.alerts.email.EmailAlertBackend"},
            id="email-without-recipients",
        ),
        pytest.param(
            {
                "BACKEND": "cronhooks.alerts.email.EmailAlertBackend",
                "OPTIONS": {"RECIPIENTS": ["ops@example.com"], "FROM_EMAIL": 1},
            },
            id="email-from-not-a-string",
        ),
        pytest.param(
            {"BACKEND": SLACK["BACKEND"], "OPTIONS": {"WEBHOOK_URL": 1}},
            id="slack-url-not-a-string",
        ),
        pytest.param(
            {"BACKEND": SLACK["BACKEND"], "OPTIONS": {"WEBHOOK_URL": "http:///hook"}},
            id="slack-http-without-a-host",
        ),
    ],
)
def test_options_an_alert_backend_rejects_are_E023(entry: object) -> None:
    assert check_error_codes(alerting({"slack": entry})) == ["cronhooks.E023"]


def test_E023_never_shows_the_webhook_url() -> None:
    insecure = "http://hooks.slack.example/services/T/B/secret-part"
    entry = {"BACKEND": SLACK["BACKEND"], "OPTIONS": {"WEBHOOK_URL": insecure}}

    [error] = check_errors(alerting({"slack": entry}))

    assert error.msg == (
        "Alert backend 'slack': WEBHOOK_URL must be an https:// URL (http:// only "
        "to this machine, for trying alerts locally)."
    )
    assert "secret-part" not in error.msg


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8766/hook", "http://localhost/hook", "http://[::1]:9/hook"],
)
def test_an_http_webhook_on_this_machine_passes_the_checks(url: str) -> None:
    entry = {"BACKEND": SLACK["BACKEND"], "OPTIONS": {"WEBHOOK_URL": url}}

    assert check_errors(alerting({"slack": entry})) == []


def test_a_job_naming_an_unknown_alert_alias_is_E024() -> None:
    job = {"command": "boom", "alerts": {"slak": {"WEBHOOK_URL": SLACK_URL}}}

    [error] = check_errors(alerting({"slack": SLACK}, nightly=job))

    assert error.id == "cronhooks.E024"
    assert "Job 'nightly'" in error.msg
    assert "'slak'" in error.msg


def test_a_job_override_that_breaks_the_channel_is_E023() -> None:
    job = {"command": "boom", "alerts": {"slack": {"WEBHOOK_URL": "http://x.example"}}}

    [error] = check_errors(alerting({"slack": SLACK}, nightly=job))

    assert error.id == "cronhooks.E023"
    assert error.msg.startswith("Job 'nightly', alert backend 'slack':")


def test_a_process_that_sends_no_alert_never_imports_requests() -> None:
    # Every web process, worker and `manage.py check` loads the run path;
    # requests costs about a third of Django's HTTP layer to import.
    code = (
        "import sys, django; django.setup(); "
        "from django.urls import resolve; resolve('/health'); "
        "import cronhooks.alerts.slack, cronhooks.views; "
        "print(sorted({'requests', 'urllib3'} & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": f"{root}:{root / 'example_project'}",
        },
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )

    assert done.stdout.strip() == "[]"
