"""Correlation context reaches every log line, the command's own included."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from typing import Any

import pytest
import structlog
from django.test import Client

from cronhooks.log import (
    RedactionFilter,
    correlation_id,
    get_logger,
    install_default_handler,
)
from cronhooks.models import JobRun
from cronhooks.testing import trigger
from tests.conftest import JsonLines
from tests.settings import TOKEN


@pytest.mark.django_db
def test_stdlib_log_lines_inside_the_command_carry_the_trigger_context(
    client: Client, json_lines: JsonLines
) -> None:
    response = trigger(client, "echo", headers={"X-Correlation-ID": "tick-123"})

    run = JobRun.objects.get()
    [line] = [line for line in json_lines() if line["message"] == "echo_params ran"]
    assert line["name"] == "tests.testapp.management.commands.echo_params"
    assert line["level"] == "INFO"
    assert line["correlation_id"] == "tick-123" == response["X-Correlation-ID"]
    assert line["job"] == "echo"
    assert line["run_id"] == str(run.id)


@pytest.mark.django_db
def test_cronhooks_own_events_are_json_lines_with_the_same_context(
    client: Client, json_lines: JsonLines
) -> None:
    trigger(client, "echo", headers={"X-Correlation-ID": "tick-456"})

    run = JobRun.objects.get()
    events = {
        line["message"]: line for line in json_lines() if line["name"] == "cronhooks"
    }
    # (lock_in_transaction too: the test runs inside a transaction.)
    assert {"run_started", "run_finished"} <= set(events)
    for line in events.values():
        assert (line["correlation_id"], line["job"], line["run_id"]) == (
            "tick-456",
            "echo",
            str(run.id),
        )
    assert events["run_finished"]["status"] == "succeeded"
    assert events["run_finished"]["duration_ms"] >= 0
    assert "timestamp" in events["run_started"]


@pytest.mark.django_db
def test_a_rejected_trigger_is_logged_with_its_reason(
    client: Client, json_lines: JsonLines
) -> None:
    client.post("/cron/ee-recent", headers={"X-Correlation-ID": "tick-789"})

    [line] = [line for line in json_lines() if line["message"] == "trigger_rejected"]
    assert line["level"] == "WARNING"
    assert line["reason"] == "unauthorized"
    assert line["correlation_id"] == "tick-789"
    assert line["job"] == "ee-recent"


@pytest.mark.django_db
def test_a_failed_run_logs_the_traceback_but_the_response_has_none(
    client: Client, json_lines: JsonLines
) -> None:
    response = trigger(client, "boom")

    [line] = [line for line in json_lines() if line["message"] == "run_failed"]
    assert line["level"] == "ERROR"
    assert line["traceback"].startswith("Traceback (most recent call last):")
    assert "CommandError: the upstream API said no" in line["traceback"]
    assert "Traceback" not in response.content.decode()


@pytest.mark.django_db
def test_context_does_not_outlive_the_request(client: Client) -> None:
    trigger(client, "echo")
    trigger(client, "nope")

    assert structlog.contextvars.get_contextvars() == {}


def test_log_lines_outside_a_run_have_no_context(json_lines: JsonLines) -> None:
    logging.getLogger("somewhere").warning("unrelated")

    [line] = json_lines()
    assert line["message"] == "unrelated"
    assert "correlation_id" not in line


@pytest.mark.parametrize(
    "incoming",
    ["6f1c2d4e-8a9b-4c3d-9e8f-7a6b5c4d3e2f", "cf:1700000000000:ee-recent", "a" * 64],
)
def test_correlation_id_keeps_safe_values(incoming: str) -> None:
    assert correlation_id(incoming) == incoming


@pytest.mark.parametrize(
    "incoming", [None, "", "a" * 65, "x\r\ny", "x y", "é", "-x", "x\x00"]
)
def test_correlation_id_replaces_unsafe_values_with_a_uuid(
    incoming: str | None,
) -> None:
    replaced = correlation_id(incoming)

    assert replaced != incoming
    assert len(replaced) == 36


@pytest.mark.django_db
def test_a_token_put_in_the_url_does_not_reach_the_logs(
    client: Client, json_lines: JsonLines
) -> None:
    client.post(f"/cron/ping?access_token={TOKEN}")
    trigger(client, "ping", query={"token": TOKEN})

    lines = json_lines()
    assert any(line["message"] == "trigger_rejected" for line in lines)
    assert TOKEN not in json.dumps(lines)


def test_django_loggers_go_through_the_one_json_handler(json_lines: JsonLines) -> None:
    logging.getLogger("django.request").warning("Bad Request: /x")
    logging.getLogger("django.server").info('"POST /cron/x HTTP/1.1" 200 10')

    assert [line["name"] for line in json_lines()] == [
        "django.request",
        "django.server",
    ]


def cronhooks_default_handler() -> logging.StreamHandler[Any]:
    [handler] = logging.getLogger("cronhooks").handlers
    assert isinstance(handler, logging.StreamHandler)
    return handler


@pytest.mark.django_db
def test_without_logging_settings_events_are_readable_lines_with_their_context(
    client: Client,
) -> None:
    # tests.settings sets no LOGGING, as a project that skipped the README's.
    stream = io.StringIO()
    saved = cronhooks_default_handler().setStream(stream)
    try:
        trigger(client, "ping", headers={"X-Correlation-ID": "tick-789"})
    finally:
        cronhooks_default_handler().setStream(saved)

    run = JobRun.objects.get()
    [started] = [
        line for line in stream.getvalue().splitlines() if "run_started" in line
    ]
    assert "[info" in started
    assert "[cronhooks]" in started
    assert "job=ping" in started
    assert f"run_id={run.id}" in started
    assert "correlation_id=tick-789" in started


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": os.pathsep.join([".", "example_project"]),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


EMIT = """
import django, structlog
django.setup()
from cronhooks.log import get_logger
with structlog.contextvars.bound_contextvars(correlation_id="tick-1", job="ping"):
    get_logger().info("run_started", run_id="r-1")
"""


def test_a_fresh_process_without_logging_settings_writes_readable_lines() -> None:
    result = run_python(EMIT)

    [line] = result.stderr.splitlines()
    assert line.split()[1:4] == ["[info", "]", "run_started"]
    assert "correlation_id=tick-1 job=ping run_id=r-1" in line


def test_a_project_logging_config_replaces_the_default() -> None:
    # The test settings' JSON config, as the README's LOGGING snippet.
    result = run_python(EMIT, CRONHOOKS_WORKER_JSON_LOGS="1")

    [line] = result.stderr.splitlines()
    assert json.loads(line) | {"timestamp": None} == {
        "timestamp": None,
        "level": "INFO",
        "name": "cronhooks",
        "message": "run_started",
        "correlation_id": "tick-1",
        "job": "ping",
        "run_id": "r-1",
    }


def test_a_level_the_project_set_without_a_handler_is_kept_by_the_default() -> None:
    # LOGGING = {"loggers": {"cronhooks": {"level": "WARNING"}}}: quieter,
    # but still readable lines rather than Python's last resort.
    logger = logging.getLogger("cronhooks")
    saved_handlers, saved_level = logger.handlers[:], logger.level
    root = logging.getLogger()
    saved_root = root.handlers[:]
    logger.handlers[:], root.handlers[:] = [], []
    logger.setLevel(logging.WARNING)
    try:
        assert install_default_handler() is True
        stream = io.StringIO()
        cronhooks_default_handler().setStream(stream)
        get_logger().info("run_started", run_id="r-1")
        get_logger().warning("lock_lost", run_id="r-1")
        level = logger.level
    finally:
        logger.handlers[:], root.handlers[:] = saved_handlers, saved_root
        logger.setLevel(saved_level)

    assert level == logging.WARNING
    [line] = stream.getvalue().splitlines()
    assert "lock_lost" in line
    assert "[warning" in line


# Secrets are redacted from every record the shipped handlers write


@pytest.mark.django_db
def test_a_token_in_a_query_string_reaches_no_line_through_djangos_own_loggers(
    client: Client, json_lines: JsonLines
) -> None:
    client.get(f"/nowhere?token={TOKEN}")  # django.request: Not Found
    client.post(f"/admin/login/?token={TOKEN}")  # django.security.csrf
    client.post(f"/cron/ping?token={TOKEN}")  # cronhooks refuses it
    # As runserver writes each request line.
    logging.getLogger("django.server").info(
        '"%s" %s %s', f"POST /cron/ping?token={TOKEN} HTTP/1.1", "401", "120"
    )

    lines = json_lines()
    names = {line["name"] for line in lines}
    assert {"django.request", "django.security.csrf", "django.server"} <= names
    assert TOKEN not in json.dumps(lines)
    [not_found] = [line for line in lines if line["name"] == "django.request"]
    assert not_found["request"] == "<WSGIRequest: GET '/nowhere?[redacted]'>"


def failure_with_a_token() -> BaseException:
    try:
        raise RuntimeError(f"upstream said no to {TOKEN}")
    except RuntimeError as error:
        return error


def test_a_traceback_holding_a_secret_is_written_redacted(
    json_lines: JsonLines,
) -> None:
    logging.getLogger("django.request").error(
        "Internal Server Error: /x", exc_info=failure_with_a_token()
    )

    [line] = json_lines()
    assert "RuntimeError: upstream said no to [redacted]" in line["exc_info"]
    assert TOKEN not in json.dumps(line)


def test_the_default_readable_handler_redacts_too_and_keeps_the_traceback() -> None:
    stream = io.StringIO()
    saved = cronhooks_default_handler().setStream(stream)
    try:
        get_logger().error(
            "run_failed", error=f"token {TOKEN}", exc_info=failure_with_a_token()
        )
    finally:
        cronhooks_default_handler().setStream(saved)

    written = stream.getvalue()
    assert TOKEN not in written
    assert "error='token [redacted]'" in written
    assert "RuntimeError: upstream said no to [redacted]" in written


def filtered(record: logging.LogRecord) -> logging.LogRecord:
    assert RedactionFilter().filter(record) is True
    return record


def test_a_record_without_secrets_is_left_as_it_was() -> None:
    error = RuntimeError("nothing to hide")
    request = object()
    record = logging.makeLogRecord(
        {
            "msg": "%s failed",
            "args": ("job",),
            "exc_info": (RuntimeError, error, None),
            "request": request,
            "fields": {"a": [1, "b"]},
        }
    )

    filtered(record)

    assert (record.msg, record.args) == ("%s failed", ("job",))
    # Handlers after this one (Sentry's) still get the exception itself.
    assert record.exc_info == (RuntimeError, error, None)
    assert vars(record)["request"] is request
    assert vars(record)["fields"] == {"a": [1, "b"]}


def test_every_part_of_a_record_that_holds_a_secret_is_redacted() -> None:
    record = logging.makeLogRecord(
        {
            "msg": "called with %s",
            "args": (TOKEN,),
            "exc_text": f"Traceback ...\nValueError: {TOKEN}",
            "stack_info": f"Stack (most recent call last):\n  {TOKEN}",
            "params": {"query": f"token={TOKEN}", "n": 1},
            "flag": True,
        }
    )

    filtered(record)

    assert record.getMessage() == "called with [redacted]"
    assert record.exc_text == "Traceback ...\nValueError: [redacted]"
    assert record.stack_info == "Stack (most recent call last):\n  [redacted]"
    assert vars(record)["params"] == {"query": "token=[redacted]", "n": 1}
    assert vars(record)["flag"] is True


def test_a_structlog_event_dict_stays_a_dict() -> None:
    record = filtered(logging.makeLogRecord({"msg": {"event": f"saw {TOKEN}"}}))

    assert record.msg == {"event": "saw [redacted]"}


def test_a_call_whose_arguments_do_not_fit_is_reported_by_logging_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("tests.misfit")
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(RedactionFilter())
    logger.addHandler(handler)
    # Not to pytest's handlers, which raise logging errors instead.
    logger.propagate = False
    try:
        logger.warning("%s and %s", TOKEN)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    report = capsys.readouterr().err
    assert "--- Logging error ---" in report
    assert "Arguments: ('[redacted]',)" in report
    assert TOKEN not in report


def test_a_project_adds_the_filter_to_its_own_logging_config() -> None:
    stream = io.StringIO()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"redact": {"()": "cronhooks.log.RedactionFilter"}},
            "handlers": {
                "plain": {
                    "class": "logging.StreamHandler",
                    "stream": stream,
                    "filters": ["redact"],
                }
            },
            "loggers": {"tests.project": {"handlers": ["plain"], "propagate": False}},
        }
    )
    logger = logging.getLogger("tests.project")
    try:
        logger.warning("Forbidden (%s): %s", "CSRF", f"/x?token={TOKEN}")
    finally:
        logger.handlers.clear()

    assert stream.getvalue() == "Forbidden (CSRF): /x?[redacted]\n"
