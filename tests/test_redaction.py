"""cronhooks.redaction: one way secrets leave text, wherever the text goes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from cronhooks.models import JobRun
from cronhooks.redaction import (
    looks_secret,
    option_secrets,
    redact,
    redact_value,
    url_secrets,
)
from cronhooks.testing import trigger
from tests.conftest import JsonLines, Webhook
from tests.servers import free_port
from tests.settings import TOKEN

LONGER_TOKEN = TOKEN + "-and-then-some-more"


def test_redact_removes_every_configured_token(settings: Any) -> None:
    other = "another-token-0123456789abcdefghijklmnop"
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": [TOKEN, other]}

    assert redact(f"a {TOKEN} b {other} c") == "a [redacted] b [redacted] c"


def test_redact_removes_the_secrets_it_is_given_along_with_the_tokens() -> None:
    text = f"posting to https://hooks.example/T1/B2 with {TOKEN}"

    redacted = redact(text, ["https://hooks.example/T1/B2"])

    assert redacted == "posting to [redacted] with [redacted]"


# Where the run records' and the alerts' redaction used to differ: the records
# replaced tokens in the order configured, the alerts longest first.


def test_a_token_containing_another_is_removed_whole(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": [TOKEN, LONGER_TOKEN]}

    assert redact(f"Bearer {LONGER_TOKEN}.") == "Bearer [redacted]."


def test_a_secret_containing_a_token_is_removed_whole() -> None:
    url = f"https://monitor.example/ping?key={TOKEN}"

    assert redact(f"GET {url} failed", [url]) == "GET [redacted] failed"


def test_an_empty_secret_removes_nothing() -> None:
    assert redact("nothing secret here", ["", ""]) == "nothing secret here"


def test_redact_value_redacts_strings_inside_dicts_and_lists() -> None:
    value = {"message": f"bad {TOKEN}", "details": [TOKEN, 3], "count": 2}

    assert redact_value(value) == {
        "message": "bad [redacted]",
        "details": ["[redacted]", 3],
        "count": 2,
    }


def test_a_secret_url_is_also_redacted_without_its_query_string() -> None:
    assert url_secrets("https://hc-ping.com/abc?rid=1") == [
        "https://hc-ping.com/abc?rid=1",
        "https://hc-ping.com/abc",
    ]
    assert url_secrets("") == []


def test_only_long_option_values_are_taken_for_secrets() -> None:
    options = {"HOST": "smtp", "KEY": "k" * 12, "TO": ["ops@example.com", 25]}

    assert option_secrets(options) == ["k" * 12, "ops@example.com"]


@pytest.mark.parametrize(
    "name", ["token", "api_key", "DB_PASSWORD", "auth", "client_secret"]
)
def test_parameter_names_that_look_secret(name: str) -> None:
    assert looks_secret(name)


def test_ordinary_parameter_names_do_not_look_secret() -> None:
    assert not looks_secret("delta")


# Everywhere text leaves cronhooks.


@pytest.mark.django_db
def test_a_token_sent_as_a_job_name_is_in_no_answer_record_or_log_line(
    client: Client, json_lines: JsonLines
) -> None:
    response = trigger(client, TOKEN)

    assert response.status_code == 404
    body = response.json()
    assert body["error"]["code"] == "unknown_job"
    assert TOKEN not in json.dumps(body)
    run = JobRun.objects.get()
    assert TOKEN not in f"{run.job} {run.error}"
    assert TOKEN not in json.dumps(json_lines())


# Every secret cronhooks knows of, and the secret parts of any URL.

SLACK_PATH = "/services/T0SECRET1/B0SECRET2/abcdefSECRETxyz"


def test_strings_kept_under_secret_names_are_redacted(settings: Any) -> None:
    secret = "whsec-0123456789abcdefghijklmnop"
    backend = "cronhooks.authenticators.signature.SignatureAuthenticator"
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "AUTHENTICATORS": [{"BACKEND": backend, "OPTIONS": {"SECRETS": [secret]}}],
    }

    assert redact(f"{backend}: {secret} refused") == f"{backend}: [redacted] refused"


def test_a_lock_key_prefix_is_no_secret(settings: Any) -> None:
    prefix = "cronhooks-production-eu"
    backend = "cronhooks.locks.redis.RedisLockBackend"
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {"BACKEND": backend, "OPTIONS": {"KEY_PREFIX": prefix}},
    }

    assert redact(f"lock {prefix}:ping held") == f"lock {prefix}:ping held"


def test_short_values_under_secret_names_are_left_alone(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "EXTRA": {"KEY": "short"}}

    assert redact("a short story") == "a short story"


def test_alert_and_heartbeat_urls_are_redacted_whole_and_as_requests_quotes_them(
    settings: Any,
) -> None:
    slack = f"https://hooks.slack.com{SLACK_PATH}"
    beat = "https://hc-ping.com/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    own = "https://hooks.slack.com/services/T1/B1/job-own-channel-secret"
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "ALERTS": {"slack": {"BACKEND": "x", "OPTIONS": {"WEBHOOK_URL": slack}}},
        "JOBS": {
            "beat": {
                "command": "boom",
                "heartbeat_url": beat,
                "alerts": {"slack": {"WEBHOOK_URL": own}},
            },
            "broken": "not a job",
        },
    }
    text = (
        f"{slack} failed; HTTPSConnectionPool(host='hooks.slack.com', port=443): "
        f"Max retries exceeded with url: {SLACK_PATH}; {beat}/fail; {own}"
    )

    redacted = redact(text)

    assert "SECRET" not in redacted
    assert "0f1e2d3c" not in redacted
    assert "job-own-channel-secret" not in redacted
    assert "host='hooks.slack.com'" in redacted


def test_known_secrets_are_read_again_when_the_settings_change(settings: Any) -> None:
    other = "another-token-0123456789abcdefghijklmnop"
    assert redact(other) == other

    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": [TOKEN, other]}

    assert redact(other) == "[redacted]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "could not connect to postgres://app:hunter2@db:5432/app",
            "could not connect to postgres://[redacted]@db:5432/app",
            id="credentials",
        ),
        pytest.param(
            "GET https://api.example/v1/items?api_key=abc123&page=2 failed",
            "GET https://api.example/v1/items?[redacted] failed",
            id="query",
        ),
        pytest.param(
            "Max retries exceeded with url: /hook?token=abc123 (Caused by X)",
            "Max retries exceeded with url: /hook?[redacted] (Caused by X)",
            id="path-and-query",
        ),
        pytest.param(
            "<WSGIRequest: GET '/nowhere?token=abc123'>",
            "<WSGIRequest: GET '/nowhere?[redacted]'>",
            id="request-repr",
        ),
        pytest.param(
            "Is it done? Yes: see https://example.com/docs.", None, id="prose"
        ),
    ],
)
def test_the_credentials_and_query_string_of_any_url_are_redacted(
    text: str, expected: str | None
) -> None:
    assert redact(text) == (text if expected is None else expected)


def test_a_url_that_cannot_be_taken_apart_is_a_secret_whole() -> None:
    assert url_secrets("https://[::1") == ["https://[::1"]


# A job whose requests call fails, against a closed port.


def closed_url(path: str, *, scheme: str = "http", userinfo: str = "") -> str:
    return f"{scheme}://{userinfo}127.0.0.1:{free_port()}{path}"


def leaked(
    secrets: list[str], response: Any, json_lines: JsonLines, webhook: Webhook
) -> list[str]:
    """The secrets found in the answer, the record, the logs and the alert."""
    run = JobRun.objects.get(id=response.json()["run_id"])
    [alert] = webhook.wait_for(1)
    places = {
        "response": response.content.decode(),
        "record": f"{run.error} {run.output}",
        "logs": json.dumps(json_lines()),
        "alert": json.dumps(alert),
    }
    return [
        f"{secret} in the {place}"
        for place, text in places.items()
        for secret in secrets
        if secret in text
    ]


def alerts_to(webhook: Webhook, slack: str = "") -> dict[str, Any]:
    backend = "cronhooks.alerts.slack.SlackAlertBackend"
    return {
        # Where the failure is shown to the test: a real local server.
        "watch": {"BACKEND": backend, "OPTIONS": {"WEBHOOK_URL": webhook.url}},
        "slack": {"BACKEND": backend, "OPTIONS": {"WEBHOOK_URL": slack}},
    }


def with_hook_jobs(settings: Any, alerts: dict[str, Any]) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "ALERTS": alerts,
        "JOBS": {
            **settings.CRONHOOKS["JOBS"],
            "notify": {"callable": "tests.testapp.jobs.post_hook"},
            "describe": {"callable": "tests.testapp.jobs.describe_hook"},
        },
    }


@pytest.mark.django_db
def test_a_secret_looking_url_in_a_failed_requests_call_leaks_nowhere(
    client: Client, settings: Any, json_lines: JsonLines, webhook: Webhook
) -> None:
    settings.JOB_HOOK_URL = closed_url(
        "/hooks/deploy?api_key=query-secret-123", userinfo="deploy:password-secret@"
    )
    with_hook_jobs(settings, alerts_to(webhook))

    response = trigger(client, "notify")

    assert response.status_code == 500
    error = response.json()["error"]["message"]
    assert "ConnectionError" in error
    assert "/hooks/deploy?[redacted]" in error
    assert (
        leaked(["query-secret-123", "password-secret"], response, json_lines, webhook)
        == []
    )


@pytest.mark.django_db
def test_the_configured_slack_webhook_url_in_a_failed_requests_call_leaks_nowhere(
    client: Client, settings: Any, json_lines: JsonLines, webhook: Webhook
) -> None:
    slack = closed_url(SLACK_PATH, scheme="https")
    settings.JOB_HOOK_URL = slack
    with_hook_jobs(settings, alerts_to(webhook, slack))

    response = trigger(client, "notify")

    assert response.status_code == 500
    assert (
        "Max retries exceeded with url: [redacted]"
        in response.json()["error"]["message"]
    )
    assert leaked(["SECRET", slack], response, json_lines, webhook) == []


@pytest.mark.django_db
def test_a_secret_url_in_a_jobs_output_is_redacted(
    client: Client, settings: Any
) -> None:
    settings.JOB_HOOK_URL = "https://user:pw-secret@hooks.example/x?sig=query-secret"
    with_hook_jobs(settings, {})

    response = trigger(client, "describe")

    assert (
        response.json()["output"]
        == "would post to https://[redacted]@hooks.example/x?[redacted]"
    )
    assert JobRun.objects.get().output == response.json()["output"]


def test_a_query_string_holding_a_known_secret_is_removed_whole() -> None:
    assert redact(f"GET /x?token={TOKEN}&a=[1]") == "GET /x?[redacted]"


def test_a_secret_in_a_jobs_fixed_options_is_redacted(settings: Any) -> None:
    jobs = {
        "sync": {"command": "sync", "options": {"api_key": "opt-0123456789-secret"}}
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}

    assert redact("sync --api-key opt-0123456789-secret") == "sync --api-key [redacted]"
