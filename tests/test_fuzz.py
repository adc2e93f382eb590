"""Hostile input, generated: whatever reaches the views, the answer is JSON,
never a 5xx, never a secret, and no job runs without a valid credential.

Hypothesis draws every part a caller controls (method, path, query, body,
content type, Authorization, correlation id, idempotency key) from strategies
that mix well-formed values with garbage. The examples are derandomized and
bounded, so CI runs the same few hundred requests every time.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import responses
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cronhooks.models import NOT_EXECUTED, JobRun
from tests.settings import TOKEN

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SLACK_WEBHOOK = "https://hooks.slack.com/services/T000/B000/fuzz-webhook-secret-0123"
SIGNING_SECRET = "fuzz-signing-secret-0123456789abcdefghijklmnop"  # noqa: S105
SECRETS = (TOKEN, SLACK_WEBHOOK, "fuzz-webhook-secret-0123", SIGNING_SECRET)
# Jobs that answer at once: the fuzzer must not sleep for a minute.
JOBS = [
    "ping",
    "echo",
    "boom",
    "off",
    "leak",
    "leak-signing",
    "post-hook",
    "mop-recent",
]

text = st.text(max_size=40)
near_miss = st.sampled_from(
    [TOKEN[:-1] + "X", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), " " + TOKEN]
)
credential = st.one_of(
    st.none(),
    st.just(f"Bearer {TOKEN}"),
    near_miss.map(lambda token: f"Bearer {token}"),
    st.builds(
        lambda scheme, value: f"{scheme} {value}",
        st.sampled_from(["Bearer", "Basic", "bearer", "Token", ""]),
        text,
    ),
    text,
)
job_segment = st.one_of(
    st.sampled_from(JOBS), text.map(lambda value: quote(value, safe="")), text
)
query = st.dictionaries(
    st.one_of(
        st.sampled_from(
            ["delta", "count", "ratio", "loud", "word", "colour", "token", "page"]
        ),
        text,
    ),
    st.one_of(text, st.integers().map(str), st.floats().map(str)),
    max_size=4,
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3)
    ),
    max_leaves=8,
)
body = st.one_of(
    st.just(("", b"")),
    json_value.map(lambda value: ("application/json", json.dumps(value).encode())),
    st.binary(max_size=200).map(lambda raw: ("application/json", raw)),
    query.map(
        lambda form: ("application/x-www-form-urlencoded", urlencode(form).encode())
    ),
    st.tuples(text, st.binary(max_size=100)),
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    headers: dict[str, str] = {}
    authorization = draw(credential)
    if authorization is not None:
        headers["Authorization"] = authorization
    for name in ("X-Correlation-ID", "Idempotency-Key", "Prefer"):
        value = draw(st.none() | text)
        if value is not None:
            headers[name] = value
    # Signatures of every shape but a valid one: no secret to sign with.
    signature = draw(
        st.none()
        | text
        | st.builds(
            "t={},v1={}".format,
            st.one_of(st.integers(), text),
            st.one_of(st.binary(max_size=32).map(bytes.hex), text),
        )
    )
    if signature is not None:
        headers["X-Cronhooks-Signature"] = signature
    # Under cronhooks' URLs: /cron/<job>, /cron/runs/<id>, /health, /cron
    # without its slash, and cron followed by what starts no project path.
    templates = [
        "/cron/{}",
        "/cron/runs/{}",
        "/health",
        "/cron",
        "/cron;{}",
        "/cron/{}/../{}",
    ]
    path = draw(
        st.sampled_from(templates).map(
            lambda template: template.format(draw(job_segment), draw(job_segment))
        )
    )
    content_type, payload = draw(body)
    return {
        "method": draw(
            st.sampled_from(["POST", "POST", "GET", "PUT", "DELETE", "OPTIONS", "HEAD"])
        ),
        "path": path,
        "query": urlencode(draw(query)),
        "content_type": content_type,
        "body": payload,
        "headers": headers,
    }


def send(client: Client, request: dict[str, Any]) -> Any:
    return client.generic(
        request["method"],
        f"{request['path']}?{request['query']}"
        if request["query"]
        else request["path"],
        data=request["body"],
        content_type=request["content_type"],
        headers=request["headers"],
    )


def valid(request: dict[str, Any]) -> bool:
    # As RFC 6750 and the server read it: the scheme in any case, spaces.
    authorization: str = request["headers"].get("Authorization", "")
    pattern = rf"bearer +{re.escape(TOKEN)}"
    return re.fullmatch(pattern, authorization.strip(), re.IGNORECASE) is not None


def recorded_text() -> str:
    fields = JobRun.objects.values_list(
        "job",
        "params",
        "correlation_id",
        "reason",
        "error",
        "output",
        "idempotency_key",
    )
    return json.dumps([list(map(str, row)) for row in fields])


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__}")


@pytest.fixture
def logs() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)


@pytest.fixture
def slack() -> Iterator[responses.RequestsMock]:
    """Slack's side of the alerts that failing jobs send."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.post(SLACK_WEBHOOK, json={"ok": True})
        yield mocked


@pytest.fixture(autouse=True)
def fuzz_settings(settings: Any, slack: responses.RequestsMock) -> None:
    jobs = {
        **settings.CRONHOOKS["JOBS"],
        "leak": {"callable": "tests.testapp.jobs.leak"},
        "leak-signing": {"callable": "tests.testapp.jobs.leak_signing_secret"},
        # Fails as a job notifying Slack would: requests names the URL.
        "post-hook": {"callable": "tests.testapp.jobs.post_hook"},
    }
    settings.JOB_HOOK_URL = f"{SLACK_WEBHOOK}/unregistered?token=x"
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": jobs,
        "AUTHENTICATORS": [
            {"BACKEND": "cronhooks.authenticators.bearer.BearerAuthenticator"},
            {
                "BACKEND": "cronhooks.authenticators.signature.SignatureAuthenticator",
                "OPTIONS": {"SECRETS": [SIGNING_SECRET]},
            },
        ],
        # Every request reaches past the limiter.
        "RATE_LIMITS": {"PER_JOB": None, "PER_IP": None, "AUTH_FAILURES": None},
        "ALERTS": {
            "slack": {
                "BACKEND": "cronhooks.alerts.slack.SlackAlertBackend",
                "OPTIONS": {"WEBHOOK_URL": SLACK_WEBHOOK},
            }
        },
    }


@FUZZ
@given(request=requests())
def test_every_answer_is_json_and_never_a_server_error(
    client: Client, request: dict[str, Any]
) -> None:
    response = send(client, request)

    if request["method"] == "HEAD":
        assert response.status_code < 500
        return
    assert response["Content-Type"].startswith("application/json"), response.content
    body = json.loads(response.content)
    if response.status_code >= 500:
        # Only on purpose: a job that failed (its own error, answered 500),
        # or a refusal that says why it is 503 (a job switched off, say).
        assert (response.status_code, body["status"]) in {
            (500, "failed"),
            (500, "timed_out"),
            (503, "rejected"),
        }, response.content
        assert "error" in body


def pinned(method: str, path: str, query: str = "", **headers: str) -> dict[str, Any]:
    """An example every run tries, whatever Hypothesis draws."""
    return {
        "method": method,
        "path": path,
        "query": query,
        "content_type": "",
        "body": b"",
        "headers": headers,
    }


VALID = {"Authorization": f"Bearer {TOKEN}"}


@FUZZ
@given(request=requests())
# The leaks found by fuzzing before: a failing requests call naming the
# webhook URL, a token in the error text, a token in the query string.
@example(request=pinned("POST", "/cron/post-hook", **VALID))
@example(request=pinned("POST", "/cron/leak", **VALID))
@example(request=pinned("POST", "/cron/leak-signing", **VALID))
@example(request=pinned("POST", "/cron/ping", f"token={TOKEN}"))
@example(request=pinned("GET", "/cron", f"access_token={TOKEN}"))
def test_no_secret_leaves_in_an_answer_a_log_line_a_run_record_or_an_alert(
    client: Client,
    logs: Capture,
    slack: responses.RequestsMock,
    request: dict[str, Any],
) -> None:
    response = send(client, request)

    answer = response.content.decode("utf-8", "replace") + str(response.headers)
    alerts = [str(call.request.body) for call in slack.calls]
    for secret in SECRETS:
        assert secret not in answer
        assert not any(secret in line for line in logs.lines)
        assert secret not in recorded_text()
        assert not any(secret in alert for alert in alerts)


@FUZZ
@given(request=requests())
def test_no_job_runs_without_a_valid_token(
    client: Client, request: dict[str, Any]
) -> None:
    before = JobRun.objects.exclude(status__in=NOT_EXECUTED).count()

    send(client, request)

    ran = JobRun.objects.exclude(status__in=NOT_EXECUTED).count() - before
    if not valid(request):
        assert ran == 0
