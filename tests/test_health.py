"""GET /health: status for anyone, detail for token holders, constant cost."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cronhooks.health import CHECKS, CheckResult, run_checks
from cronhooks.models import JobRun
from cronhooks.testing import trigger
from tests.conftest import JsonLines, PostgresProxy
from tests.settings import TOKEN

pytestmark = pytest.mark.django_db


def test_anonymous_callers_get_only_the_status(client: Client) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}
    assert response["X-Correlation-ID"]


def test_a_wrong_token_gets_only_the_status(client: Client) -> None:
    response = client.get("/health", headers={"Authorization": "Bearer " + "x" * 40})

    assert response.json() == {"status": "healthy"}


def test_a_token_holder_gets_each_check_and_each_job(
    client: Client, auth: dict[str, str]
) -> None:
    trigger(client, "ee-recent", headers={"X-Correlation-ID": "tick-1"})
    trigger(client, "boom")
    client.post("/cron/ee-recent")  # refused: not a run of the job

    body = client.get("/health", headers=auth).json()

    assert body["status"] == "healthy"
    assert body["checks"] == {
        "database": {"ok": True, "detail": "ok"},
        "auth": {"ok": True, "detail": "ok"},
        "jobs": {"ok": True, "detail": "ok"},
        "locks": {"ok": True, "detail": "ok"},
        "critical_jobs": {"ok": True, "detail": "none declared"},
    }
    assert body["environment"] == "production"
    assert body["locks"] == {"backend": "DatabaseLockBackend", "database": "default"}
    ee_recent = body["jobs"]["ee-recent"]
    assert ee_recent["schedule"] == "*/5 * * * *"
    assert (
        ee_recent["runs"]
        == "uk_create_elections_from_every_election --recently-updated"
    )
    assert ee_recent["next_run"].endswith("+00:00")
    assert ee_recent["last_run"]["status"] == "succeeded"
    assert ee_recent["last_run"]["correlation_id"] == "tick-1"
    assert (
        body["jobs"]["boom"]["last_run"]["error"]
        == "CommandError: the upstream API said no"
    )
    assert body["jobs"]["parties-import"]["last_run"] is None
    assert body["jobs"]["off"]["enabled"] is False
    assert body["jobs"]["off"]["description"] == ""


def test_last_run_is_the_newest_run_of_each_job(
    client: Client, auth: dict[str, str]
) -> None:
    first = trigger(client, "ping").json()["run_id"]
    second = trigger(client, "ping").json()["run_id"]

    last = client.get("/health", headers=auth).json()["jobs"]["ping"]["last_run"]

    assert first != second
    assert last["run_id"] == second


def test_health_costs_the_same_queries_whatever_the_history_size(
    client: Client, auth: dict[str, str]
) -> None:
    with CaptureQueriesContext(connection) as empty:
        client.get("/health", headers=auth)
    for _ in range(5):
        for job in ("ping", "boom", "echo", "ee-recent"):
            trigger(client, job)

    with CaptureQueriesContext(connection) as full:
        body = client.get("/health", headers=auth).json()

    assert all(body["jobs"][job]["last_run"] for job in ("ping", "boom", "echo"))
    # SELECT 1, the lock table, the last runs, then the open pauses.
    assert len(full) == len(empty) == 4


def test_anonymous_health_reads_no_run_history(client: Client) -> None:
    with CaptureQueriesContext(connection) as queries:
        client.get("/health")

    assert len(queries) == 2
    assert queries[0]["sql"] == "SELECT 1"
    assert "cronhooks_jobrun" not in queries[1]["sql"]


def test_no_token_configured_is_unhealthy(client: Client, settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": []}

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy"}


def test_a_misconfigured_job_is_unhealthy_and_named(
    client: Client, settings: Any, auth: dict[str, str]
) -> None:
    jobs = {**settings.CRONHOOKS["JOBS"], "broken": {"command": "x", "enabled": "no"}}
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}

    response = client.get("/health", headers=auth)

    assert response.status_code == 503
    assert response.json()["checks"]["jobs"] == {
        "ok": False,
        "detail": "misconfigured: broken",
    }


def test_database_down_is_unhealthy_without_leaking_the_driver_message(
    client: Client, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise DatabaseError('could not connect to server "db.internal" as user admin')

    monkeypatch.setattr(connection, "cursor", refuse)

    response = client.get("/health", headers=auth)

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"] == {"ok": False, "detail": "unavailable"}
    assert body["jobs"] is None
    assert "db.internal" not in response.content.decode()


def test_a_crashing_check_is_unhealthy_with_unknown_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def check_flaky() -> CheckResult:
        raise RuntimeError("secret detail")

    monkeypatch.setattr("cronhooks.health.CHECKS", (*CHECKS, check_flaky))

    results = {result.name: result for result in run_checks()}

    assert results["flaky"] == CheckResult("flaky", False, "unknown error")
    assert results["database"].ok


def test_post_to_health_is_405(client: Client) -> None:
    response = client.post("/health")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert not JobRun.objects.exists()


def test_head_is_allowed(client: Client) -> None:
    assert client.head("/health").status_code == 200


def test_a_wrong_token_on_health_is_logged(
    client: Client, json_lines: JsonLines
) -> None:
    client.get("/health", headers={"Authorization": "Bearer " + "x" * 40})
    client.get("/health")

    [line] = [line for line in json_lines() if line["message"] == "health_auth_failed"]
    assert line["level"] == "WARNING"
    assert line["correlation_id"]


def test_a_token_holder_is_told_another_configured_token_is_unusable(
    client: Client, settings: Any, auth: dict[str, str]
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": [TOKEN, "too-short"]}

    response = client.get("/health", headers=auth)

    assert response.status_code == 503
    assert response.json()["checks"]["auth"] == {
        "ok": False,
        "detail": "a configured token is invalid",
    }
    assert "too-short" not in response.content.decode()


def test_no_token_configured_makes_health_unhealthy(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": []}

    assert client.get("/health").status_code == 503
    [result] = [result for result in run_checks() if result.name == "auth"]
    assert result == CheckResult("auth", False, "no token configured")


SIGNATURE = "cronhooks.authenticators.signature.SignatureAuthenticator"


@pytest.mark.parametrize(
    ("entries", "detail"),
    [
        pytest.param(
            [{"BACKEND": "no.such.Thing"}], "an authenticator is misconfigured"
        ),
        pytest.param([], "no authenticator configured"),
        pytest.param(
            [{"BACKEND": SIGNATURE, "OPTIONS": {"SECRETS": ["short"]}}],
            "an authenticator's secret is invalid",
        ),
        pytest.param(
            [{"BACKEND": SIGNATURE, "OPTIONS": {"SECRETS": ["s" * 32]}}], "ok"
        ),
    ],
    ids=["misconfigured", "none", "weak-secret", "signatures-only"],
)
def test_health_checks_every_authenticator(
    client: Client, settings: Any, entries: list[Any], detail: str
) -> None:
    # Without TOKENS: only an authenticator that reads them needs them.
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": [], "AUTHENTICATORS": entries}

    [result] = [result for result in run_checks() if result.name == "auth"]

    assert result == CheckResult("auth", detail == "ok", detail)
    assert client.get("/health").status_code == (200 if detail == "ok" else 503)


def test_a_misconfigured_lock_backend_is_reported_not_described(
    client: Client, settings: Any, auth: dict[str, str]
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "LOCKS": {"BACKEND": "nope.Nope"}}

    response = client.get("/health", headers=auth)

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["locks"] == {"ok": False, "detail": "misconfigured"}
    assert body["locks"] is None


@pytest.mark.django_db(transaction=True, databases=["default", "postgres", "proxied"])
def test_a_critical_job_with_the_history_down_is_unhealthy_saying_so(
    client: Client,
    auth: dict[str, str],
    settings: Any,
    proxied_history: PostgresProxy,
) -> None:
    jobs = settings.CRONHOOKS["JOBS"]
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {**jobs, "ping": {**jobs["ping"], "critical": True}},
    }
    assert client.get("/health").status_code == 200
    proxied_history.stop()

    anonymous = client.get("/health")
    detail = client.get("/health", headers=auth)

    assert anonymous.status_code == 503
    assert anonymous.json() == {"status": "unhealthy"}
    assert detail.json()["checks"]["critical_jobs"] == {
        "ok": False,
        "detail": "run history unavailable",
    }
    assert detail.json()["jobs"] is None
    proxied_history.restart()
    assert client.get("/health").status_code == 200


def test_the_detail_lists_jobs_needing_attention_first_a_page_at_a_time(
    client: Client, auth: dict[str, str], settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "HEALTH_JOBS": 2}
    trigger(client, "ping")
    trigger(client, "boom")  # failing: listed first

    pages = [
        client.get("/health", {"page": page}, headers=auth).json()
        for page in range(1, 100)
    ]

    first = pages[0]
    total = first["jobs_summary"]["total"]
    assert list(first["jobs"])[0] == "boom"
    assert first["jobs_summary"]["states"]["failing"] == 1
    assert sum(first["jobs_summary"]["states"].values()) == total
    assert first["jobs_summary"]["pages"] == -(-total // 2)
    listed = [name for page in pages for name in page["jobs"]]
    assert len(listed) == len(set(listed)) == total
    assert all(len(page["jobs"]) <= 2 for page in pages)
    # Past the last page: no jobs, still the summary.
    assert pages[-1]["jobs"] == {}
    assert pages[-1]["jobs_summary"]["page"] == 99


@pytest.mark.parametrize("page", ["0", "-1", "x", "1.5", "\u0661", "", "10000000"])
def test_a_page_that_is_not_a_whole_number_from_1_is_refused(
    client: Client, auth: dict[str, str], page: str
) -> None:
    response = client.get("/health", {"page": page}, headers=auth)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameters"
    assert response.json()["error"]["details"] == {"page": "invalid"}


def test_anonymous_callers_may_send_any_page(client: Client) -> None:
    # They get no list to page through: the parameter is ignored.
    assert client.get("/health", {"page": "x"}).json() == {"status": "healthy"}


def test_health_detail_reads_every_jobs_history_once_with_critical_jobs(
    client: Client, auth: dict[str, str], settings: Any
) -> None:
    jobs = settings.CRONHOOKS["JOBS"]
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {**jobs, "ping": {**jobs["ping"], "critical": True}},
    }
    trigger(client, "ping")

    with CaptureQueriesContext(connection) as queries:
        body = client.get("/health", headers=auth).json()

    assert body["checks"]["critical_jobs"] == {"ok": True, "detail": "ok"}
    # SELECT 1, the lock table, the last runs of every job, the open pauses.
    assert len(queries) == 4
