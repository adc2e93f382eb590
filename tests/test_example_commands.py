"""The example project's demo commands: the rows they write and what they report,
and the settings that let a user watch an alert end to end."""

from __future__ import annotations

import datetime
import json
import logging
import os
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from responses import matchers

from elections.management.commands.uk_create_elections_from_every_election import (
    DEMO_ELECTIONS,
)
from elections.models import Election, ImportRun, Party, is_current
from tests.servers import SentryIngest

EE_IMPORT = "uk_create_elections_from_every_election"
SLACK_WEBHOOK_URL = "https://hooks.slack.example/services/T000/B000/XXXX"
ROOT = Path(__file__).resolve().parent.parent


def run(command: str, *args: str, **options: Any) -> str:
    stdout = StringIO()
    call_command(command, *args, stdout=stdout, **options)
    return stdout.getvalue()


def recorded_options() -> list[dict[str, Any]]:
    return [import_run.options for import_run in ImportRun.objects.all()]


def election_ids() -> set[str]:
    return set(Election.objects.values_list("election_id", flat=True))


# uk_create_elections_from_every_election


@pytest.mark.django_db
def test_plain_run_imports_every_demo_election() -> None:
    output = run(EE_IMPORT)

    assert output == "imported 6 elections\n"
    assert election_ids() == {e.election_id for e in DEMO_ELECTIONS}
    assert recorded_options() == [
        {
            "recently_updated": False,
            "recently_updated_delta": None,
            "check_current": False,
        }
    ]


@pytest.mark.django_db
def test_import_sets_current_from_poll_date() -> None:
    run(EE_IMPORT)

    today = timezone.localdate()
    for election in Election.objects.all():
        assert election.current == is_current(election.poll_open_date, today)


@pytest.mark.django_db
def test_import_updates_existing_elections_instead_of_duplicating_them() -> None:
    Election.objects.create(
        election_id="local.2027-05-06",
        name="Old name",
        poll_open_date=datetime.date(2027, 5, 6),
    )

    run(EE_IMPORT)
    run(EE_IMPORT)

    assert Election.objects.count() == len(DEMO_ELECTIONS)
    assert (
        Election.objects.get(election_id="local.2027-05-06").name == "Local elections"
    )


@pytest.mark.django_db
def test_recently_updated_without_delta_looks_back_60_minutes() -> None:
    output = run(EE_IMPORT, "--recently-updated")

    assert output == "imported 3 elections (delta=60 minutes)\n"
    assert election_ids() == {
        e.election_id for e in DEMO_ELECTIONS if e.minutes_since_changed <= 60
    }
    assert recorded_options() == [
        {
            "recently_updated": True,
            "recently_updated_delta": None,
            "check_current": False,
        }
    ]


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (["--recently-updated", "--recently-updated-delta", "25"], {}),
        # The keyword form is how a job's params reach the command.
        (["--recently-updated"], {"recently_updated_delta": 25}),
    ],
)
@pytest.mark.django_db
def test_recently_updated_delta_narrows_the_window_and_is_recorded(
    args: list[str], options: dict[str, Any]
) -> None:
    output = run(EE_IMPORT, *args, **options)

    assert output == "imported 2 elections (delta=25 minutes)\n"
    assert election_ids() == {
        e.election_id for e in DEMO_ELECTIONS if e.minutes_since_changed <= 25
    }
    assert recorded_options() == [
        {"recently_updated": True, "recently_updated_delta": 25, "check_current": False}
    ]


@pytest.mark.django_db
def test_recently_updated_delta_without_recently_updated_is_an_error() -> None:
    with pytest.raises(CommandError, match="needs --recently-updated"):
        run(EE_IMPORT, "--recently-updated-delta", "25")

    assert not Election.objects.exists()
    assert not ImportRun.objects.exists()


@pytest.mark.django_db
def test_check_current_recomputes_current_from_poll_date_without_importing() -> None:
    today = timezone.localdate()
    Election.objects.create(
        election_id="soon",
        name="Soon",
        poll_open_date=today + datetime.timedelta(days=14),
        current=False,
    )
    Election.objects.create(
        election_id="long-past",
        name="Long past",
        poll_open_date=today - datetime.timedelta(days=400),
        current=True,
    )
    Election.objects.create(
        election_id="far-off",
        name="Far off",
        poll_open_date=today + datetime.timedelta(days=400),
        current=False,
    )

    output = run(EE_IMPORT, "--check-current")

    assert output == "checked 3 elections, 2 changed current\n"
    assert dict(Election.objects.values_list("election_id", "current")) == {
        "soon": True,
        "long-past": False,
        "far-off": False,
    }
    assert recorded_options() == [
        {
            "recently_updated": False,
            "recently_updated_delta": None,
            "check_current": True,
        }
    ]


@pytest.mark.django_db
def test_summary_is_logged_as_well_as_written_to_stdout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="elections"):
        run(EE_IMPORT, "--recently-updated", "--recently-updated-delta", "25")

    assert "imported 2 elections (delta=25 minutes)" in caplog.messages


# parties_import_from_ec


@pytest.mark.django_db
def test_parties_import_upserts_demo_parties_and_records_the_run() -> None:
    first = run("parties_import_from_ec")
    run("parties_import_from_ec")

    assert first == "imported 4 parties\n"
    assert Party.objects.count() == 4
    assert recorded_options() == [{"post_to_slack": False}, {"post_to_slack": False}]


@pytest.mark.django_db
def test_post_to_slack_posts_the_summary_to_the_webhook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", SLACK_WEBHOOK_URL)

    with responses.RequestsMock() as mock:
        mock.post(
            SLACK_WEBHOOK_URL,
            body="ok",
            match=[matchers.json_params_matcher({"text": "imported 4 parties"})],
        )
        run("parties_import_from_ec", "--post-to-slack")

        # Inside the block: the mock forgets its calls on exit.
        assert len(mock.calls) == 1

    assert recorded_options() == [{"post_to_slack": True}]


@pytest.mark.django_db
def test_post_to_slack_without_webhook_url_skips_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)

    # No URL is registered, so any request would fail the test.
    with responses.RequestsMock() as mock, caplog.at_level(logging.WARNING):
        run("parties_import_from_ec", "--post-to-slack")
        assert len(mock.calls) == 0

    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "SLACK_WEBHOOK_URL is not set, not posting to Slack")
    ]
    assert Party.objects.count() == 4


@pytest.mark.django_db
def test_without_post_to_slack_nothing_is_posted_even_with_a_webhook_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", SLACK_WEBHOOK_URL)

    with responses.RequestsMock() as mock:
        run("parties_import_from_ec")
        assert len(mock.calls) == 0


@pytest.mark.django_db
def test_slack_rejecting_the_post_fails_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", SLACK_WEBHOOK_URL)

    with responses.RequestsMock() as mock, pytest.raises(requests.HTTPError):
        mock.post(SLACK_WEBHOOK_URL, status=500)
        run("parties_import_from_ec", "--post-to-slack")


# slow


@pytest.mark.django_db
def test_slow_with_zero_seconds_returns_at_once() -> None:
    started = time.monotonic()
    output = run("slow", "--seconds", "0")

    assert time.monotonic() - started < 0.5
    assert output == "slept 0 seconds\n"
    assert recorded_options() == [{"seconds": 0}]


@pytest.mark.django_db
def test_slow_sleeps_in_tenths_and_logs_each_second(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)

    with caplog.at_level(logging.INFO, logger="elections"):
        output = run("slow", seconds=2)

    assert sleeps == [0.1] * 20
    assert output == "slept 2 seconds\n"
    assert caplog.messages == [
        "slept 1 of 2 seconds",
        "slept 2 of 2 seconds",
        "slept 2 seconds",
    ]


@pytest.mark.django_db
def test_slow_rejects_negative_seconds() -> None:
    with pytest.raises(CommandError, match="cannot be negative"):
        run("slow", "--seconds", "-1")

    assert not ImportRun.objects.exists()


# demo_job, and the example project's alert settings


@pytest.mark.django_db
def test_demo_job_succeeds_unless_asked_to_fail() -> None:
    assert run("demo_job") == "succeeded\n"
    # The keyword form is how the demo-fail job's ?fail=false reaches it.
    assert run("demo_job", fail=False) == "succeeded\n"


@pytest.mark.django_db
def test_demo_job_fails_when_asked_to() -> None:
    with pytest.raises(CommandError, match="failing on request"):
        run("demo_job", fail=True)


def example_project(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run Python in the example project, with only ``env`` set for it."""
    unset = {
        "DJANGO_SETTINGS_MODULE",
        "REDIS_URL",
        "DATABASE_URL",
        "SLACK_WEBHOOK_URL",
        "SENTRY_DSN",
    }
    environ = {key: value for key, value in os.environ.items() if key not in unset}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT / "example_project",
        env={**environ, "CRONHOOKS_TOKEN": "x" * 40, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def example_cronhooks(**env: str) -> dict[str, Any]:
    result = example_project(
        "-c",
        "import json, example.settings as s; print(json.dumps(s.CRONHOOKS))",
        **env,
    )
    assert result.returncode == 0, result.stderr
    settings: dict[str, Any] = json.loads(result.stdout)
    return settings


def test_the_example_alerts_to_slack_webhook_url_and_links_under_its_base_url() -> None:
    cronhooks = example_cronhooks(
        SLACK_WEBHOOK_URL=SLACK_WEBHOOK_URL, CRONHOOKS_BASE_URL="http://127.0.0.1:8000"
    )

    assert cronhooks["ALERTS"] == {
        "slack": {
            "BACKEND": "cronhooks.alerts.slack.SlackAlertBackend",
            "OPTIONS": {"WEBHOOK_URL": SLACK_WEBHOOK_URL},
        }
    }
    assert cronhooks["BASE_URL"] == "http://127.0.0.1:8000"
    assert cronhooks["JOBS"]["demo-fail"]["command"] == "demo_job"


def test_without_slack_webhook_url_the_example_has_slack_switched_off() -> None:
    cronhooks = example_cronhooks()

    assert cronhooks["ALERTS"]["slack"]["OPTIONS"] == {"WEBHOOK_URL": ""}
    assert cronhooks["BASE_URL"] == ""


def test_the_example_with_a_slack_webhook_url_passes_its_checks() -> None:
    result = example_project("manage.py", "check", SLACK_WEBHOOK_URL=SLACK_WEBHOOK_URL)

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_without_sentry_dsn_the_example_sends_no_check_ins() -> None:
    assert "sentry" not in example_cronhooks()["ALERTS"]


def test_with_sentry_dsn_the_example_checks_in_with_a_prefix_and_passes_checks() -> (
    None
):
    dsn = "https://5ad0f3c1e8b94d7aa1b2c3d4e5f60718@o1.ingest.sentry.example/1"

    cronhooks = example_cronhooks(SENTRY_DSN=dsn, SENTRY_MONITOR_PREFIX="ex-")
    checked = example_project("manage.py", "check", SENTRY_DSN=dsn)

    assert cronhooks["ALERTS"]["sentry"] == {
        "BACKEND": "cronhooks.alerts.sentry.SentryCronsBackend",
        "OPTIONS": {"MONITOR_PREFIX": "ex-"},
    }
    assert checked.returncode == 0, checked.stderr
    assert "no issues" in checked.stdout


@pytest.mark.slow
def test_the_example_with_sentry_dsn_checks_each_run_in(tmp_path: Path) -> None:
    ingest = SentryIngest("5ad0f3c1e8b94d7aa1b2c3d4e5f60718")
    env = {"SENTRY_DSN": ingest.dsn, "SQLITE_PATH": str(tmp_path / "db.sqlite3")}
    try:
        migrated = example_project("manage.py", "migrate", "--verbosity", "0", **env)
        assert migrated.returncode == 0, migrated.stderr
        ran = example_project(
            "manage.py", "cronhooks", "run", "demo-fail", "--param", "fail=true", **env
        )
        check_ins = ingest.wait_for_check_ins(2)
    finally:
        ingest.close()

    assert ran.returncode == 1, ran.stderr
    assert [(c["monitor_slug"], c["status"]) for c in check_ins] == [
        ("demo-fail", "in_progress"),
        ("demo-fail", "error"),
    ]
    # demo-fail has no schedule: its monitor is made in Sentry, not here.
    assert [c.get("monitor_config") for c in check_ins] == [None, None]
    assert {c["environment"] for c in check_ins} == {"production"}
