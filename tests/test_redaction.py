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
from tests.conftest import JsonLines
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
