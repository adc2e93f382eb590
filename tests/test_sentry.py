"""cronhooks.alerts.sentry: every run is a Sentry Crons check-in, sent
through sentry-sdk to a real HTTP server standing in for Sentry's ingest,
and a Sentry that is missing or failing never changes a run."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from django.test import Client

from cronhooks.alerts import Alert, AlertBackend
from cronhooks.alerts.sentry import SentryCronsBackend
from cronhooks.models import JobRun
from cronhooks.redaction import known_secrets, sentry_secrets
from cronhooks.testing import trigger
from tests.conftest import JsonLines
from tests.servers import SentryIngest
from tests.settings import TOKEN
from tests.test_alerts import join_deliveries
from tests.test_checks import check_error_codes, check_errors
from tests.test_task_workers import (
    DATABASE_LOCKS,
    Engine,
    accepted,
    wait_for,
)
from tests.testapp.jobs import FLAKY, SLEEPER
from tests.workers import worker_env

# Sentry's public keys are 32 hex digits; the DSN is a secret all the same.
PUBLIC_KEY = "5ad0f3c1e8b94d7aa1b2c3d4e5f60718"
SENTRY = {"BACKEND": "cronhooks.alerts.sentry.SentryCronsBackend"}
NIGHTLY = {
    "callable": "tests.testapp.jobs.ping",
    "schedule": {"production": "33 23 * * *", "staging": "0 */6 * * *"},
    "grace": 600,
    "timeout": 90,
}


def start_sentry(dsn: str | None) -> None:
    # No integrations: the test process must be left as it was found.
    sentry_sdk.init(
        dsn=dsn, default_integrations=False, auto_enabling_integrations=False
    )
    # The DSN is read with the other secrets, once per settings change.
    known_secrets.cache_clear()


@pytest.fixture
def ingest() -> Iterator[SentryIngest]:
    server = SentryIngest(PUBLIC_KEY)
    start_sentry(server.dsn)
    try:
        yield server
    finally:
        join_deliveries()
        sentry_sdk.get_client().close(timeout=2)
        start_sentry(None)
        server.close()


def configure(
    settings: Any, options: dict[str, Any] | None = None, **jobs: Any
) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "ALERTS": {"sentry": {**SENTRY, "OPTIONS": options or {}}},
        "JOBS": {**settings.CRONHOOKS["JOBS"], "nightly": NIGHTLY, **jobs},
    }


def only_run() -> JobRun:
    [run] = JobRun.objects.all()
    return run


@pytest.mark.django_db
def test_a_run_is_one_check_in_in_progress_then_ok_with_its_duration(
    client: Client, settings: Any, ingest: SentryIngest
) -> None:
    configure(settings)

    assert trigger(client, "nightly").status_code == 200

    started, ended = ingest.wait_for_check_ins(2)
    run = only_run()
    assert (started["status"], ended["status"]) == ("in_progress", "ok")
    assert started["check_in_id"] == ended["check_in_id"] == uuid.UUID(run.run_id).hex
    assert started["monitor_slug"] == ended["monitor_slug"] == "nightly"
    assert started.get("duration") is None
    assert run.duration_ms is not None
    assert ended["duration"] == pytest.approx(run.duration_ms / 1000)


@pytest.mark.django_db
def test_each_check_in_upserts_the_monitor_from_the_registry(
    client: Client, settings: Any, ingest: SentryIngest
) -> None:
    configure(settings, {"FAILURE_ISSUE_THRESHOLD": 2, "RECOVERY_THRESHOLD": 3})
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TIMEOUT_GRACE": 10}

    trigger(client, "nightly")

    configs = [check_in["monitor_config"] for check_in in ingest.wait_for_check_ins(2)]
    assert (
        configs
        == [
            {
                "schedule": {"type": "crontab", "value": "33 23 * * *"},
                "timezone": "UTC",
                # grace: 600 s
                "checkin_margin": 10,
                # timeout 90 s + TIMEOUT_GRACE 10 s, rounded up to whole minutes
                "max_runtime": 2,
                "failure_issue_threshold": 2,
                "recovery_threshold": 3,
            }
        ]
        * 2
    )


@pytest.mark.django_db
def test_the_monitor_has_this_environments_schedule_and_no_limit_without_timeout(
    client: Client, settings: Any, ingest: SentryIngest
) -> None:
    configure(settings, nightly={**NIGHTLY, "timeout": None, "grace": 30})
    settings.CRONHOOKS = {**settings.CRONHOOKS, "ENVIRONMENT": "staging"}

    trigger(client, "nightly")

    config = ingest.wait_for_check_ins(2)[0]["monitor_config"]
    # Sentry's own default maximum runtime applies; its least margin is 1.
    assert config == {
        "schedule": {"type": "crontab", "value": "0 */6 * * *"},
        "timezone": "UTC",
        "checkin_margin": 1,
    }


@pytest.mark.django_db
def test_a_manual_job_checks_in_without_monitor_config(
    client: Client, settings: Any, ingest: SentryIngest
) -> None:
    # Its monitor is made in Sentry; a config would need a schedule.
    configure(settings, {"MONITOR_PREFIX": "elections-"})

    trigger(client, "ping")

    check_ins = ingest.wait_for_check_ins(2)
    assert [check_in["monitor_slug"] for check_in in check_ins] == [
        "elections-ping"
    ] * 2
    assert [check_in.get("monitor_config") for check_in in check_ins] == [None] * 2


@pytest.mark.django_db
def test_a_failed_run_checks_in_error_and_sends_no_other_event(
    client: Client, settings: Any, ingest: SentryIngest
) -> None:
    configure(settings)

    assert trigger(client, "boom").status_code == 500

    started, ended = ingest.wait_for_check_ins(2)
    assert (started["status"], ended["status"]) == ("in_progress", "error")
    assert ended["duration"] == pytest.approx(only_run().duration_ms / 1000)  # type: ignore[operator]
    # Sentry raises the issue from the error check-in: no alert of its own.
    assert [kind for envelope in ingest.envelopes for kind, _ in envelope.items] == [
        "check_in",
        "check_in",
    ]


@pytest.mark.django_db
def test_a_run_past_its_timeout_checks_in_error_with_its_duration(
    client: Client, settings: Any, ingest: SentryIngest
) -> None:
    configure(settings, capped={**SLEEPER, "timeout": 1})

    response = trigger(client, "capped", query={"seconds": "5"})

    assert response.json()["status"] == "timed_out"
    started, ended = ingest.wait_for_check_ins(2)
    assert (started["status"], ended["status"]) == ("in_progress", "error")
    assert 1 <= ended["duration"] < 5
    assert ended["check_in_id"] == uuid.UUID(only_run().run_id).hex


@pytest.mark.django_db(transaction=True)
def test_each_attempt_of_a_retried_run_is_a_check_in_of_its_own(
    client: Client, settings: Any, ingest: SentryIngest, tmp_path: Path
) -> None:
    # Left open, the failed attempt's check-in would be timed out by Sentry.
    flaky = {**FLAKY, "retries": 1, "retry_delay": 0}
    configure(settings, flaky=flaky)

    trigger(client, "flaky", query={"path": str(tmp_path / "count")})
    join_deliveries()

    check_ins = ingest.wait_for_check_ins(4)
    runs = JobRun.objects.order_by("attempt")
    assert [run.status for run in runs] == ["failed", "succeeded"]
    by_attempt = [
        [c["status"] for c in check_ins if c["check_in_id"] == uuid.UUID(r.run_id).hex]
        for r in runs
    ]
    assert by_attempt == [["in_progress", "error"], ["in_progress", "ok"]]


@pytest.mark.django_db
def test_a_job_with_alerts_false_sends_no_check_ins(
    client: Client, settings: Any, ingest: SentryIngest
) -> None:
    configure(settings, quiet={"callable": "tests.testapp.jobs.ping", "alerts": False})

    assert trigger(client, "quiet").status_code == 200
    join_deliveries()
    sentry_sdk.flush(timeout=5)

    assert ingest.check_ins() == []


@pytest.mark.django_db
def test_without_sentry_initialised_the_run_succeeds_and_it_is_logged(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    start_sentry(None)
    configure(settings)

    response = trigger(client, "nightly")
    join_deliveries()

    assert response.status_code == 200
    failed = [line for line in json_lines() if line["message"] == "heartbeat_failed"]
    assert [(line["signal"], line["level"]) for line in failed] == [
        ("start", "WARNING"),
        ("success", "WARNING"),
    ]
    assert "sentry_sdk is not initialised" in failed[0]["reason"]
    assert "traceback" not in failed[0]


@pytest.mark.django_db
def test_an_ingest_that_fails_leaves_the_run_as_it_was(
    client: Client, settings: Any, ingest: SentryIngest, json_lines: JsonLines
) -> None:
    ingest.status = 500
    configure(settings)

    response = trigger(client, "nightly")

    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    # The SDK tried, and dropped them: the run is not its business.
    assert len(ingest.wait_for_check_ins(2)) == 2
    assert only_run().status == "succeeded"


@pytest.mark.django_db
def test_an_ingest_that_is_gone_leaves_the_run_as_it_was(
    client: Client, settings: Any, ingest: SentryIngest
) -> None:
    ingest.close()
    configure(settings)

    response = trigger(client, "nightly")

    assert response.status_code == 200
    assert only_run().status == "succeeded"


@pytest.mark.django_db
def test_the_dsn_is_redacted_from_the_answer_the_record_and_the_logs(
    client: Client, settings: Any, ingest: SentryIngest, json_lines: JsonLines
) -> None:
    configure(settings, leaky={"callable": "tests.testapp.jobs.quote_sentry_dsn"})

    response = trigger(client, "leaky")
    join_deliveries()

    assert response.status_code == 500
    assert "could not report to [redacted]" in response.json()["error"]["message"]
    everything = response.content.decode() + only_run().error + json.dumps(json_lines())
    assert "could not report to" in everything
    assert ingest.dsn not in everything
    assert PUBLIC_KEY not in everything


def test_the_backend_names_the_dsn_and_its_key_as_its_secrets(
    ingest: SentryIngest,
) -> None:
    backend = SentryCronsBackend("sentry", {})

    assert backend.secrets() == [ingest.dsn, PUBLIC_KEY]
    assert PUBLIC_KEY not in repr(backend)


class Forgetful(AlertBackend):
    """Says it sends heartbeats, but never learnt how."""

    heartbeats = True

    def send(self, alert: Alert) -> None:
        raise AssertionError("not a failure")


@pytest.mark.django_db
def test_a_heartbeat_backend_without_beat_is_logged_and_changes_nothing(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "ALERTS": {"mine": {"BACKEND": f"{__name__}.Forgetful"}},
    }

    assert trigger(client, "ping").status_code == 200
    join_deliveries()

    failed = [line for line in json_lines() if line["message"] == "heartbeat_failed"]
    assert [(line["alias"], line["error"]) for line in failed] == [
        ("mine", "NotImplementedError")
    ] * 2


class Unbuildable(AlertBackend):
    heartbeats = True

    def __init__(self, alias: str, options: Any) -> None:
        raise RuntimeError(f"cannot start with {TOKEN}")

    def send(self, alert: Alert) -> None:
        raise AssertionError("never built")


@pytest.mark.django_db
def test_a_heartbeat_backend_that_cannot_be_built_is_logged_and_changes_nothing(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "ALERTS": {"odd": {"BACKEND": f"{__name__}.Unbuildable"}},
    }

    assert trigger(client, "ping").status_code == 200

    failed = [line for line in json_lines() if line["message"] == "alerts_failed"]
    # Once as the run starts, once as it ends.
    assert [line["error"] for line in failed] == ["RuntimeError"] * 2
    assert TOKEN not in json.dumps(json_lines())


def test_without_sentry_sdk_imported_no_dsn_is_looked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "sentry_sdk")

    assert sentry_secrets() == []
    # Nor is it imported to look: a project without Sentry pays nothing.
    assert "sentry_sdk" not in sys.modules


# System checks: cronhooks.E023 (options), E045 (a job it cannot serve)


def sentry_settings(options: object = None, **jobs: object) -> dict[str, Any]:
    entry = {**SENTRY, "OPTIONS": options} if options is not None else SENTRY
    return {"TOKENS": [TOKEN], "ALERTS": {"sentry": entry}, "JOBS": jobs}


def test_valid_sentry_options_pass_the_checks() -> None:
    options = {
        "MONITOR_PREFIX": "elections_prod-",
        "FAILURE_ISSUE_THRESHOLD": 3,
        "RECOVERY_THRESHOLD": None,
    }

    assert check_error_codes(sentry_settings(options, nightly=NIGHTLY)) == []


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"MONITOR_PREFIX": "Elections "}, id="prefix-not-a-slug"),
        pytest.param({"MONITOR_PREFIX": 1}, id="prefix-not-a-string"),
        pytest.param({"FAILURE_ISSUE_THRESHOLD": 0}, id="threshold-zero"),
        pytest.param({"RECOVERY_THRESHOLD": "2"}, id="threshold-a-string"),
        pytest.param({"RECOVERY_THRESHOLD": True}, id="threshold-a-bool"),
        pytest.param({"DSN": "https://key@sentry.example/1"}, id="unknown-option"),
    ],
)
def test_options_sentry_cannot_use_are_E023(options: dict[str, Any]) -> None:
    assert check_error_codes(sentry_settings(options)) == ["cronhooks.E023"]


def test_a_slug_longer_than_sentry_keeps_is_E045() -> None:
    name = "x" * 45
    job = {"callable": "tests.testapp.jobs.ping"}

    [error] = check_errors(
        sentry_settings({"MONITOR_PREFIX": "elections-"}, **{name: job})
    )

    assert error.id == "cronhooks.E045"
    assert error.msg.startswith(f"Job {name!r}, alert backend 'sentry':")
    assert "longer than 50 characters" in error.msg


def test_E045_judges_a_job_with_its_own_overrides() -> None:
    short = {"callable": "tests.testapp.jobs.ping"}
    prefixed = {**short, "alerts": {"sentry": {"MONITOR_PREFIX": "p" * 45}}}

    errors = check_errors(
        sentry_settings(
            {}, short=short, prefixed=prefixed, quiet={**short, "alerts": False}
        )
    )

    assert [(error.id, error.msg.split(",")[0]) for error in errors] == [
        ("cronhooks.E045", "Job 'prefixed'")
    ]


# Across processes: the task worker that runs a background job checks in.


@pytest.fixture
def worker(settings: Any, ingest: SentryIngest, tmp_path: Path) -> Iterator[Engine]:
    """A db_worker process with sentry_sdk.init pointed at the ingest."""
    overrides = {
        "TASK_BACKEND": "database",
        "JOBS": {
            **settings.CRONHOOKS["JOBS"],
            "nightly": {**NIGHTLY, "background": True},
            "deaf": {
                "callable": "tests.testapp.jobs.ignore_time_limit",
                "background": True,
                "timeout": 1,
            },
        },
        "ALERTS": {"sentry": SENTRY},
        "TIMEOUT_GRACE": 1,
        "LOCKS": DATABASE_LOCKS,
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, **overrides}
    extra = {
        "CRONHOOKS_WORKER_SETTINGS": json.dumps(overrides),
        "CRONHOOKS_WORKER_JSON_LOGS": "1",
        "CRONHOOKS_TEST_SENTRY_DSN": ingest.dsn,
    }
    engine = Engine("database", worker_env(DATABASE_LOCKS, extra), tmp_path / "log")
    engine.start_worker()
    try:
        yield engine
    finally:
        engine.stop_all()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_background_run_checks_in_from_the_task_worker_that_runs_it(
    client: Client, ingest: SentryIngest, worker: Engine
) -> None:
    run_id = accepted(trigger(client, "nightly"))

    body = wait_for(client, run_id)

    assert body["status"] == "succeeded"
    # The trigger only queued it: both come from the worker, after the start.
    check_ins = ingest.wait_for_check_ins(2)
    assert [check_in["status"] for check_in in check_ins] == ["in_progress", "ok"]
    assert {check_in["check_in_id"] for check_in in check_ins} == {
        uuid.UUID(run_id).hex
    }
    assert check_ins[1]["monitor_config"]["max_runtime"] == 2  # 90 s + 1 s
    assert check_ins[1]["duration"] == pytest.approx(body["duration_ms"] / 1000)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_ended_for_a_deaf_job_still_delivers_its_error_check_in(
    client: Client, ingest: SentryIngest, worker: Engine
) -> None:
    # A slow ingest holds the SDK's queue: the error check-in still waits in
    # it when the worker ends itself (os._exit), unless it was flushed first.
    ingest.delay = 4
    run_id = accepted(trigger(client, "deaf"))

    body = wait_for(client, run_id)

    assert body["status"] == "timed_out"
    check_ins = ingest.wait_for_check_ins(2)
    assert [check_in["status"] for check_in in check_ins] == ["in_progress", "error"]
    assert worker.workers[0].wait(timeout=10) == 70
