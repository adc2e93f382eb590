"""cronhooks.responses: the one place refusals become HTTP statuses and
headers; lock backends know nothing of HTTP."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from django.test import Client

from cronhooks import exceptions
from cronhooks.exceptions import (
    AuthenticationFailed,
    BackendUnavailable,
    JobLocked,
    LockBackendUnavailable,
    MethodNotAllowed,
    RateLimited,
    TriggerRejected,
)
from cronhooks.locks import Holder, LockError, LockHeld, LockUnavailable
from cronhooks.models import JobRun
from cronhooks.responses import error_body, headers, status_code
from cronhooks.runs.execution import refusal
from cronhooks.runs.slots import RunActive
from cronhooks.runs.tasks import NotQueued
from cronhooks.testing import trigger
from tests.settings import TOKEN

# Every refusal and the status it is answered with. A new refusal fails
# test_every_refusal_has_a_status_decided_here until it is listed.
STATUSES: dict[str, int] = {
    "TriggerRejected": 400,
    "InvalidBody": 400,
    "InvalidParameters": 400,
    "InvalidIdempotencyKey": 400,
    "AuthenticationFailed": 401,
    "NetworkNotAllowed": 403,
    "UnknownJob": 404,
    "UnknownRun": 404,
    "UnknownEndpoint": 404,
    "MethodNotAllowed": 405,
    "Busy": 409,
    "IdempotencyKeyInProgress": 409,
    "JobLocked": 409,
    "RunActive": 409,
    "BodyTooLarge": 413,
    "IdempotencyKeyReused": 422,
    "RateLimited": 429,
    "SwitchedOff": 503,
    "JobDisabled": 503,
    "JobPaused": 503,
    "MetricsUnavailable": 503,
    "JobsDisabled": 503,
    "CommandUnavailable": 503,
    "Misconfigured": 503,
    "JobMisconfigured": 503,
    "TasksUnavailable": 503,
    "BackendUnavailable": 503,
    "LockBackendUnavailable": 503,
    "QueueUnavailable": 503,
    # Internal to task workers, never answered over HTTP.
    "NotQueued": 400,
}


def refusals(
    kind: type[TriggerRejected] = TriggerRejected,
) -> list[type[TriggerRejected]]:
    """cronhooks' refusals: ``kind`` and everything under it."""
    found = [kind, *(sub for child in kind.__subclasses__() for sub in refusals(child))]
    return [each for each in found if each.__module__.startswith("cronhooks.")]


def a(kind: type[TriggerRejected]) -> TriggerRejected:
    """An instance of any refusal, whatever its constructor wants."""
    rejection = kind.__new__(kind)
    TriggerRejected.__init__(rejection, "refused")
    return rejection


def test_every_refusal_has_a_status_decided_here() -> None:
    # RunActive and NotQueued live on the run path; import them so they count.
    assert RunActive in refusals()
    assert NotQueued in refusals()

    assert {kind.__name__: status_code(a(kind)) for kind in refusals()} == STATUSES


def test_no_refusal_carries_http_itself() -> None:
    for kind in refusals():
        assert not hasattr(kind, "status_code"), kind
        assert not hasattr(kind, "headers"), kind


def test_exceptions_read_no_settings() -> None:
    assert not hasattr(exceptions, "conf")


def test_a_method_refusal_names_the_methods_allowed() -> None:
    assert headers(MethodNotAllowed("PUT", ("GET", "HEAD"))) == {"Allow": "GET, HEAD"}


def test_a_missing_token_is_challenged_without_an_error() -> None:
    assert headers(AuthenticationFailed("Missing.")) == {
        "WWW-Authenticate": 'Bearer realm="cronhooks"'
    }


def test_a_wrong_token_is_challenged_as_invalid() -> None:
    assert headers(AuthenticationFailed("Invalid.", invalid_token=True)) == {
        "WWW-Authenticate": 'Bearer realm="cronhooks", error="invalid_token"'
    }


def test_a_rate_limit_says_when_its_window_ends() -> None:
    assert headers(RateLimited("Slow down.", retry_after=17)) == {"Retry-After": "17"}


@pytest.mark.parametrize(
    "kind",
    [
        "JobDisabled",
        "JobPaused",
        "JobsDisabled",
        "JobMisconfigured",
        "CommandUnavailable",
        "TasksUnavailable",
        "MetricsUnavailable",
    ],
)
def test_a_job_off_until_a_deploy_asks_not_to_be_retried_this_tick(kind: str) -> None:
    rejection = getattr(exceptions, kind)("off")

    assert headers(rejection) == {"Retry-After": "3600"}


@pytest.mark.parametrize(
    "kind", ["BackendUnavailable", "LockBackendUnavailable", "QueueUnavailable"]
)
def test_a_backend_outage_asks_for_a_retry_after_the_configured_pause(
    settings: Any, kind: str
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "RETRY_AFTER": 7}

    assert headers(getattr(exceptions, kind)("down")) == {"Retry-After": "7"}


@pytest.mark.parametrize("kind", ["InvalidBody", "UnknownJob", "IdempotencyKeyReused"])
def test_other_refusals_have_no_headers(kind: str) -> None:
    assert headers(getattr(exceptions, kind)("no")) == {}


def test_the_error_body_never_quotes_a_token() -> None:
    rejection = TriggerRejected(f"bad {TOKEN}", details={"token": TOKEN})

    assert error_body(rejection) == {
        "code": "rejected",
        "message": "bad [redacted]",
        "details": {"token": "[redacted]"},
    }


# Lock backends raise their own exceptions; the run path turns them into
# refusals.


def test_lock_backend_exceptions_are_not_refusals() -> None:
    assert not issubclass(LockError, TriggerRejected)


def test_a_held_lock_is_refused_as_already_running_naming_its_holder() -> None:
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    rejection = refusal(LockHeld("sync", Holder(run_id="r-1", since=since)))

    assert isinstance(rejection, JobLocked)
    assert status_code(rejection) == 409
    assert error_body(rejection) == {
        "code": "already_running",
        "message": "Job 'sync' is already running (run r-1, since "
        "2026-01-02T03:04:05+00:00).",
        "details": {
            "run_id": "r-1",
            "status": "running",
            "since": "2026-01-02T03:04:05+00:00",
        },
    }


def test_a_lock_held_by_no_one_known_is_refused_without_details() -> None:
    rejection = refusal(LockHeld("sync", None))

    assert error_body(rejection) == {
        "code": "already_running",
        "message": "Job 'sync' is already running.",
    }


def test_an_unreachable_lock_backend_is_a_503_lock_unavailable() -> None:
    rejection = refusal(LockUnavailable("The Redis lock server is unavailable."))

    assert isinstance(rejection, LockBackendUnavailable)
    assert isinstance(rejection, BackendUnavailable)
    assert status_code(rejection) == 503
    assert error_body(rejection) == {
        "code": "lock_unavailable",
        "message": "The Redis lock server is unavailable.",
    }


@pytest.mark.django_db
def test_a_refused_trigger_is_answered_with_the_status_and_headers_decided_here(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "ENABLED": False}

    response = trigger(client, "ping")

    assert response.status_code == 503
    assert response["Retry-After"] == "3600"
    assert response.json()["error"]["code"] == "jobs_disabled"
    assert JobRun.objects.get().reason == "jobs_disabled"
