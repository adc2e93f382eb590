"""The HTTP contract of POST /cron/<job>: one test per rule."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError
from django.test import Client

from cronhooks.models import JobRun
from cronhooks.testing import trigger
from elections.models import ImportRun
from tests.conftest import JsonLines, PostgresProxy

pytestmark = pytest.mark.django_db


def only_run() -> JobRun:
    runs = list(JobRun.objects.all())
    assert len(runs) == 1, runs
    return runs[0]


def last_import() -> dict[str, Any]:
    record = ImportRun.objects.latest("created_at")
    options: dict[str, Any] = record.options
    return {"command": record.command, **options}


# The four seed routes, exactly as the design table gives them.


def test_ee_recent_runs_recently_updated(client: Client) -> None:
    response = trigger(client, "ee-recent")

    assert response.status_code == 200, response.json()
    assert last_import() == {
        "command": "uk_create_elections_from_every_election",
        "recently_updated": True,
        "recently_updated_delta": None,
        "check_current": False,
    }


def test_parties_import_runs_with_post_to_slack(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)

    response = trigger(client, "parties-import")

    assert response.status_code == 200, response.json()
    assert last_import() == {"command": "parties_import_from_ec", "post_to_slack": True}


def test_check_current_runs_check_current(client: Client) -> None:
    response = trigger(client, "check-current")

    assert response.status_code == 200, response.json()
    assert last_import() == {
        "command": "uk_create_elections_from_every_election",
        "recently_updated": False,
        "recently_updated_delta": None,
        "check_current": True,
    }


def test_mop_recent_passes_delta_from_query_string(client: Client) -> None:
    response = trigger(client, "mop-recent", query={"delta": "25"})

    assert response.status_code == 200, response.json()
    assert last_import()["recently_updated_delta"] == 25
    assert last_import()["recently_updated"] is True
    assert response.json()["params"] == {"delta": 25}


def test_mop_recent_takes_delta_from_a_json_body(client: Client) -> None:
    response = trigger(client, "mop-recent", body={"delta": 90})

    assert response.status_code == 200, response.json()
    assert last_import()["recently_updated_delta"] == 90


# Success responses.


def test_success_response_describes_the_run(client: Client) -> None:
    response = trigger(client, "echo", query={"count": "3", "loud": "true"})

    body = response.json()
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert body["status"] == "succeeded"
    assert body["job"] == "echo"
    assert body["params"] == {"count": 3, "loud": True}
    assert json.loads(body["output"]) == {
        "count": 3,
        "ratio": None,
        "loud": True,
        "word": None,
        "colour": None,
    }
    assert body["duration_ms"] >= 0
    run = only_run()
    assert body["run_id"] == str(run.id)
    assert run.status == JobRun.Status.SUCCEEDED
    assert run.source == JobRun.Source.HTTP
    assert run.params == {"count": 3, "loud": True}
    assert run.finished_at is not None
    assert run.client == "127.0.0.1"


def test_a_plain_callable_job_runs_and_its_return_value_is_the_output(
    client: Client,
) -> None:
    response = trigger(client, "ping")

    assert response.status_code == 200
    assert response.json()["output"] == "pong"


# Failures of the job itself: 500, type and message, never a traceback.


def test_failing_job_is_500_with_error_type_and_message(client: Client) -> None:
    response = trigger(client, "boom")

    body = response.json()
    assert response.status_code == 500
    assert body["status"] == "failed"
    assert body["error"] == {
        "code": "job_failed",
        "message": "CommandError: the upstream API said no",
    }
    assert body["output"] == "starting\n"
    assert "Traceback" not in response.content.decode()
    run = only_run()
    assert run.status == JobRun.Status.FAILED
    assert run.error == "CommandError: the upstream API said no"


def test_output_keeps_only_the_tail_within_the_limit(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "OUTPUT_LIMIT": 50}

    response = trigger(client, "echo", query={"spam": "100"})

    body = response.json()
    assert body["output_truncated"] is True
    assert len(body["output"]) == 50
    assert body["output"].endswith("line 98\nline 99\n")
    assert only_run().output == body["output"]


# Refusals: a precise status, a JSON body that says why, and a record.


def test_unknown_job_is_404_and_recorded(client: Client) -> None:
    response = trigger(client, "does-not-exist")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_job"
    run = only_run()
    assert (run.job, run.status, run.reason) == (
        "does-not-exist",
        JobRun.Status.REJECTED,
        "unknown_job",
    )


def test_get_is_405_with_allow_post(client: Client, auth: dict[str, str]) -> None:
    response = client.get("/cron/ee-recent", headers=auth)

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert only_run().reason == "method_not_allowed"
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ({"delta": "abc"}, "delta", "must be an integer"),
        ({"delta": "0"}, "delta", "must be at least 1"),
        ({"delta": "1441"}, "delta", "must be at most 1440"),
        ({"dleta": "5"}, "dleta", "unknown parameter"),
    ],
)
def test_invalid_parameters_are_400_naming_each_one(
    client: Client, query: dict[str, str], field: str, reason: str
) -> None:
    response = trigger(client, "mop-recent", query=query)

    body = response.json()
    assert response.status_code == 400
    assert body["status"] == "rejected"
    assert body["error"]["code"] == "invalid_parameters"
    assert body["error"]["details"] == {field: reason}
    assert not ImportRun.objects.exists()
    assert only_run().reason == "invalid_parameters"


def test_a_parameter_given_twice_is_400(client: Client, auth: dict[str, str]) -> None:
    response = client.post("/cron/mop-recent?delta=5&delta=6", headers=auth)

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"delta": "given more than once"}


def test_a_parameter_in_both_query_and_body_is_400(client: Client) -> None:
    response = trigger(client, "mop-recent", query={"delta": "5"}, body={"delta": 6})

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "delta": "given in both the query string and the body"
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "The body is not valid JSON"),
        (b"[1, 2]", "The body must be a JSON object of parameters."),
        (b"\xff\xfe", "The body is not valid JSON"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(
    client: Client, auth: dict[str, str], body: bytes, message: str
) -> None:
    response = client.post(
        "/cron/mop-recent", data=body, content_type="application/json", headers=auth
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_body"
    assert response.json()["error"]["message"].startswith(message)
    assert only_run().reason == "invalid_body"


def test_an_empty_body_is_no_parameters(client: Client, auth: dict[str, str]) -> None:
    response = client.post(
        "/cron/mop-recent", data=b"  ", content_type="application/json", headers=auth
    )

    assert response.status_code == 200
    assert response.json()["params"] == {"delta": 25}


def test_a_body_over_the_limit_is_413_and_the_job_does_not_run(
    client: Client, auth: dict[str, str], settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "MAX_BODY_SIZE": 64}
    body = json.dumps({"delta": 5, "padding": "x" * 100})

    response = client.post(
        "/cron/mop-recent", data=body, content_type="application/json", headers=auth
    )

    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "body_too_large",
        "message": "The body is larger than 64 bytes.",
    }
    assert not ImportRun.objects.exists()
    assert only_run().reason == "body_too_large"


def test_a_disabled_job_is_503(client: Client) -> None:
    response = trigger(client, "off")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "job_disabled"


def test_the_global_switch_disables_every_job_with_503(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "ENABLED": False}

    response = trigger(client, "ee-recent")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "jobs_disabled"
    assert not ImportRun.objects.exists()


def test_a_misconfigured_job_is_503_not_500(client: Client, settings: Any) -> None:
    jobs = {**settings.CRONHOOKS["JOBS"], "broken": {"command": "x", "lock_ttl": -1}}
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}

    response = trigger(client, "broken")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "job_misconfigured"


def test_database_down_is_503_with_retry_after(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise DatabaseError("connection refused to db.internal:5432")

    monkeypatch.setattr(JobRun, "save", refuse)

    response = trigger(client, "ee-recent")

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["error"] == {
        "code": "backend_unavailable",
        "message": "The run history is unavailable.",
    }
    assert "db.internal" not in response.content.decode()
    assert not ImportRun.objects.exists()


def test_retry_after_follows_the_setting(
    client: Client, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "RETRY_AFTER": 5}

    def refuse(*args: object, **kwargs: object) -> None:
        raise DatabaseError("down")

    monkeypatch.setattr(JobRun, "save", refuse)

    assert trigger(client, "ping")["Retry-After"] == "5"


# Correlation IDs.


def test_every_response_carries_a_correlation_id(
    client: Client, auth: dict[str, str]
) -> None:
    responses = [
        trigger(client, "ping"),
        trigger(client, "boom"),
        trigger(client, "nope"),
        client.post("/cron/ping"),
        client.get("/cron/ping", headers=auth),
        client.get("/health"),
    ]

    for response in responses:
        uuid.UUID(response["X-Correlation-ID"])
    assert len({response["X-Correlation-ID"] for response in responses}) == 6


def test_a_safe_incoming_correlation_id_is_kept_everywhere(client: Client) -> None:
    response = trigger(client, "ping", headers={"X-Correlation-ID": "cf-tick:42.a_b-c"})

    assert response["X-Correlation-ID"] == "cf-tick:42.a_b-c"
    assert response.json()["correlation_id"] == "cf-tick:42.a_b-c"
    assert only_run().correlation_id == "cf-tick:42.a_b-c"


@pytest.mark.parametrize(
    "incoming",
    [
        "a" * 65,
        "abc\ninjected=1",
        "abc def",
        '{"json":1}',
        "-leading-dash",
        "",
    ],
)
def test_an_unsafe_incoming_correlation_id_is_replaced(
    client: Client, incoming: str
) -> None:
    response = trigger(client, "ping", headers={"X-Correlation-ID": incoming})

    replaced = response["X-Correlation-ID"]
    assert replaced != incoming
    uuid.UUID(replaced)
    assert only_run().correlation_id == replaced


# Every attempt is recorded.


def test_every_authenticated_attempt_is_recorded_with_its_reason(
    client: Client, auth: dict[str, str]
) -> None:
    trigger(client, "ping")
    trigger(client, "boom")
    trigger(client, "nope")
    trigger(client, "echo", query={"count": "99"})
    client.get("/cron/ping", headers=auth)

    recorded = sorted(
        JobRun.objects.values_list("job", "status", "reason"), key=lambda row: row[2]
    )
    assert recorded == [
        ("ping", "succeeded", ""),
        ("echo", "rejected", "invalid_parameters"),
        ("boom", "failed", "job_failed"),
        ("ping", "rejected", "method_not_allowed"),
        ("nope", "rejected", "unknown_job"),
    ]


@pytest.mark.parametrize(
    ("method", "query", "headers"),
    [
        pytest.param("POST", "", {}, id="no-token"),
        pytest.param("POST", "", {"Authorization": "Bearer " + "x" * 40}, id="wrong"),
        pytest.param("GET", "", {}, id="wrong-method-no-token"),
        pytest.param("POST", "?token=abc", {}, id="token-in-query"),
    ],
)
def test_a_refusal_before_authentication_is_logged_never_stored(
    client: Client,
    json_lines: JsonLines,
    method: str,
    query: str,
    headers: dict[str, str],
) -> None:
    # Anyone can send these: they must not be able to fill the run history.
    path = f"/cron/invented-{uuid.uuid4().hex[:8]}{query}"

    response = client.generic(method, path, headers=headers)

    assert response.status_code in (401, 405)
    assert response.json()["run_id"] is None
    assert not JobRun.objects.exists()
    [line] = [x for x in json_lines() if x["message"] == "trigger_rejected"]
    assert line["recorded"] is False
    assert line["correlation_id"] == response["X-Correlation-ID"]


def test_csrf_does_not_apply_to_bearer_authenticated_triggers(client: Client) -> None:
    # The client fixture enforces CSRF checks like a browser-facing site does.
    assert trigger(client, "ping").status_code == 200


# Hostile or odd requests: always a JSON answer, always recorded.


def assert_json_refusal(
    response: Any, status: int, code: str, *, recorded: bool = True
) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response["X-Correlation-ID"]
    assert response.json()["status"] == "rejected"
    assert response.json()["error"]["code"] == code
    assert JobRun.objects.filter(reason=code).exists() is recorded


@pytest.mark.parametrize("length", ["\u00b2", "9" * 5000, "-1", "12a"])
def test_an_odd_content_length_is_refused_in_json(
    client: Client, auth: dict[str, str], length: str
) -> None:
    response = client.post("/cron/ping", headers=auth, CONTENT_LENGTH=length)

    code = "body_too_large" if length.isascii() and length.isdigit() else "invalid_body"
    assert_json_refusal(response, 413 if code == "body_too_large" else 400, code)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 15000, "too deeply nested"),
        (b'{"count": ' + b"9" * 5000 + b"}", "Exceeds the limit"),
        (b'{"ratio": NaN}', "NaN is not a number JSON allows"),
        (b'{"count": Infinity}', "Infinity is not a number JSON allows"),
        (b'{"count": 1, "count": 11}', "a key is given more than once"),
    ],
)
def test_malformed_json_is_400_naming_the_problem(
    client: Client, auth: dict[str, str], settings: Any, body: bytes, reason: str
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "MAX_BODY_SIZE": 64 * 1024}

    response = client.post(
        "/cron/echo", data=body, content_type="application/json", headers=auth
    )

    assert_json_refusal(response, 400, "invalid_body")
    assert reason in response.json()["error"]["message"]


def test_a_valid_but_absurdly_nested_object_is_400(
    client: Client, auth: dict[str, str]
) -> None:
    body = b'{"a":' * 2000 + b"1" + b"}" * 2000

    response = client.post(
        "/cron/echo", data=body, content_type="application/json", headers=auth
    )

    # Refused by the JSON parser's recursion limit or, where the stack allows
    # the parse, as a nested value: either way a 400 that says why.
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"invalid_body", "invalid_parameters"}


def test_list_and_object_values_are_refused(client: Client) -> None:
    response = trigger(client, "echo", body={"count": [1], "word": {"a": 1}})

    assert_json_refusal(response, 400, "invalid_parameters")
    assert response.json()["error"]["details"] == {
        "count": "must be a single value, not a list or an object",
        "word": "must be a single value, not a list or an object",
    }


def test_too_many_query_fields_is_400_even_before_auth(client: Client) -> None:
    query = "&".join(f"a{number}=1" for number in range(1001))

    response = client.post(f"/cron/ping?{query}")

    # Not stored: it could not even be authenticated.
    assert_json_refusal(response, 400, "invalid_body", recorded=False)


def test_multipart_without_boundary_is_400(
    client: Client, auth: dict[str, str]
) -> None:
    response = client.post(
        "/cron/ping", data=b"x", content_type="multipart/form-data", headers=auth
    )

    assert_json_refusal(response, 400, "invalid_body")


def test_a_file_upload_is_400(client: Client, auth: dict[str, str]) -> None:
    upload = SimpleUploadedFile("a.txt", b"hello")

    response = client.post("/cron/ping", data={"file": upload}, headers=auth)

    assert_json_refusal(response, 400, "invalid_body")


def test_a_body_over_djangos_own_limit_is_413(
    client: Client, auth: dict[str, str], settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "MAX_BODY_SIZE": 10_000_000}
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = client.post(
        "/cron/echo",
        data=b"{}" + b" " * 2000,
        content_type="application/json",
        headers=auth,
    )

    assert_json_refusal(response, 413, "body_too_large")


@pytest.mark.parametrize("path", ["/cron/", "/cron/ping/", "/cron/a/b"])
def test_paths_that_are_not_job_names_are_404_in_json(
    client: Client, auth: dict[str, str], path: str
) -> None:
    assert_json_refusal(client.post(path, headers=auth), 404, "unknown_job")


@pytest.mark.parametrize(
    "name", ["abc%0Ainjected=1", "a%00b", "x" * 5000, "%C3%A9t%C3%A9"]
)
def test_a_job_name_that_is_not_a_slug_is_recorded_escaped(
    client: Client, auth: dict[str, str], name: str
) -> None:
    response = client.post(f"/cron/{name}", headers=auth)

    assert_json_refusal(response, 404, "unknown_job")
    recorded = JobRun.objects.get().job
    assert recorded == response.json()["job"]
    assert recorded.startswith("'")
    assert len(recorded) <= 100
    assert "\n" not in recorded
    assert "\x00" not in recorded


@pytest.mark.parametrize(
    "body",
    [b'{"zzz": "\\u0000"}', b'{"zzz": "\\ud800"}', b'{"zzz": 1e999}', b'{"zzz": null}'],
)
def test_values_a_database_refuses_are_recorded_safely(
    client: Client, auth: dict[str, str], body: bytes
) -> None:
    response = client.post(
        "/cron/ping", data=body, content_type="application/json", headers=auth
    )

    assert_json_refusal(response, 400, "invalid_parameters")
    [value] = JobRun.objects.get().params.values()
    assert isinstance(value, str)


def test_a_lone_surrogate_is_not_a_valid_string_parameter(
    client: Client, auth: dict[str, str]
) -> None:
    response = client.post(
        "/cron/echo",
        data=b'{"word": "\\ud800"}',
        content_type="application/json",
        headers=auth,
    )

    assert_json_refusal(response, 400, "invalid_parameters")
    assert response.json()["error"]["details"] == {"word": "must be valid Unicode"}


def test_output_a_database_refuses_is_stored_escaped(
    client: Client, settings: Any
) -> None:
    jobs = {**settings.CRONHOOKS["JOBS"], "nul": {"callable": "tests.testapp.jobs.nul"}}
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}

    response = trigger(client, "nul")

    assert response.status_code == 200
    assert JobRun.objects.get().output == "a\\x00b \\ud800"


def test_a_string_switch_fails_closed(client: Client, settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "ENABLED": "false"}

    assert_json_refusal(trigger(client, "ping"), 503, "jobs_disabled")


def test_the_database_down_answer_says_rejected_not_running(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise DatabaseError("down")

    monkeypatch.setattr(JobRun, "save", refuse)

    response = trigger(client, "ping")

    assert response.status_code == 503
    assert response.json()["status"] == "rejected"


def test_json_labelled_as_a_form_is_400_saying_which_content_type_to_send(
    client: Client, auth: dict[str, str]
) -> None:
    # What curl -d '{"delta": 5}' sends when no Content-Type is given.
    response = client.post(
        "/cron/mop-recent",
        data=b'{"delta": 5}',
        content_type="application/x-www-form-urlencoded",
        headers=auth,
    )

    assert_json_refusal(response, 400, "invalid_body")
    assert "Content-Type: application/json" in response.json()["error"]["message"]
    assert not ImportRun.objects.exists()


# A body without a Content-Length (chunked, behind an ASGI server)


def asgi_post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST ``body`` through Django's ASGI handler without a Content-Length,
    as a server passes a chunked upload on."""
    import asyncio

    from django.core.handlers.asgi import ASGIHandler

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
            *(
                (name.lower().encode(), value.encode())
                for name, value in headers.items()
            ),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    chunks = [body[:10], body[10:]]
    sent: list[Mapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        # The client waits for the answer: no disconnect before it is sent.
        answered: asyncio.Future[dict[str, Any]] = loop.create_future()
        return await answered

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(ASGIHandler()(scope, receive, send))
    start = next(
        message for message in sent if message["type"] == "http.response.start"
    )
    content = b"".join(
        message.get("body", b"")
        for message in sent
        if message["type"] == "http.response.body"
    )
    return start["status"], content


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_over_the_limit_is_413_though_no_length_was_declared(
    auth: dict[str, str], settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "MAX_BODY_SIZE": 100}
    body = b'{"delta": 5' + b" " * 200 + b"}"

    status, content = asgi_post("/cron/mop-recent", body, auth)

    assert status == 413
    assert json.loads(content)["error"]["code"] == "body_too_large"
    assert not ImportRun.objects.exists()
    assert JobRun.objects.get().reason == "body_too_large"


# GET /cron/runs/<id> with the run history down


@pytest.mark.django_db(transaction=True, databases=["default", "postgres", "proxied"])
def test_a_run_status_with_the_history_down_is_503_and_logged(
    client: Client,
    auth: dict[str, str],
    proxied_history: PostgresProxy,
    json_lines: JsonLines,
) -> None:
    run_id = trigger(client, "ping").json()["run_id"]
    proxied_history.stop()

    response = client.get(f"/cron/runs/{run_id}", headers=auth)

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["error"] == {
        "code": "backend_unavailable",
        "message": "The run history is unavailable.",
    }
    [line] = [
        line for line in json_lines() if line["message"] == "run_status_unavailable"
    ]
    assert line["level"] == "ERROR"
    assert line["correlation_id"] == response["X-Correlation-ID"]
    proxied_history.restart()
    assert client.get(f"/cron/runs/{run_id}", headers=auth).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_under_base_url_a_background_runs_status_url_is_the_public_one(
    client: Client, settings: Any
) -> None:
    # Behind a proxy the request's own host is an internal one: BASE_URL wins.
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "BASE_URL": "https://cron.example.org",
        "TASK_BACKEND": "database",
        "JOBS": {
            **settings.CRONHOOKS["JOBS"],
            "bg": {"command": "check", "background": True},
        },
    }

    response = trigger(client, "bg")

    assert response.status_code == 202
    run_id = response.json()["run_id"]
    assert response.json()["status_url"] == (
        f"https://cron.example.org/cron/runs/{run_id}"
    )
    assert response["Location"] == response.json()["status_url"]
