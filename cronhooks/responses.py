"""Every refusal as HTTP answers it: its status code, headers and error body.

The one place that knows HTTP for refusals: ``exceptions.py`` says what went
wrong, lock and task backends raise their own exceptions (turned into
refusals on the run path), and the views render what is decided here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cronhooks.conf import conf
from cronhooks.exceptions import (
    AuthenticationFailed,
    BackendUnavailable,
    BodyTooLarge,
    Busy,
    IdempotencyKeyReused,
    JobPaused,
    MethodNotAllowed,
    Misconfigured,
    NetworkNotAllowed,
    RateLimited,
    SwitchedOff,
    TriggerRejected,
    UnknownEndpoint,
    UnknownJob,
    UnknownRun,
)
from cronhooks.redaction import redact_value

if TYPE_CHECKING:
    from cronhooks.runs.outcome import Outcome

# Each refusal's status is that of the nearest class listed here in its MRO;
# TriggerRejected itself, and the invalid requests, are 400.
STATUS_CODES: dict[type[TriggerRejected], int] = {
    TriggerRejected: 400,
    AuthenticationFailed: 401,
    NetworkNotAllowed: 403,
    UnknownJob: 404,
    UnknownRun: 404,
    UnknownEndpoint: 404,
    MethodNotAllowed: 405,
    Busy: 409,
    BodyTooLarge: 413,
    IdempotencyKeyReused: 422,
    RateLimited: 429,
    SwitchedOff: 503,
    JobPaused: 503,
    Misconfigured: 503,
    BackendUnavailable: 503,
}

# A switch is not flipped back within a scheduler's retries: a Retry-After
# this long tells the Worker (and any polite client) not to retry this tick.
SWITCHED_OFF_RETRY_AFTER = 3600


def status_code(rejection: TriggerRejected) -> int:
    """The HTTP status a refusal is answered with."""
    # TriggerRejected, in every refusal's MRO, ends the search.
    return next(
        STATUS_CODES[kind] for kind in type(rejection).__mro__ if kind in STATUS_CODES
    )


def headers(rejection: TriggerRejected) -> dict[str, str]:
    """The headers that go with a refusal's status."""
    if isinstance(rejection, MethodNotAllowed):
        return {"Allow": ", ".join(rejection.allowed)}
    if isinstance(rejection, AuthenticationFailed):
        # RFC 6750 section 3: say "invalid_token" only when one was presented.
        challenge = 'Bearer realm="cronhooks"'
        if rejection.invalid_token:
            challenge += ', error="invalid_token"'
        return {"WWW-Authenticate": challenge}
    if isinstance(rejection, RateLimited):
        return {"Retry-After": str(rejection.retry_after)}
    if isinstance(rejection, SwitchedOff):
        return {"Retry-After": str(SWITCHED_OFF_RETRY_AFTER)}
    if isinstance(rejection, BackendUnavailable):
        return {"Retry-After": str(conf.retry_after)}
    return {}


def error_body(rejection: TriggerRejected) -> dict[str, object]:
    """The ``error`` object of a refusal's JSON answer."""
    # A refusal may quote what the caller sent: a token, by mistake.
    return {name: redact_value(value) for name, value in rejection.as_dict().items()}


def outcome_status(outcome: Outcome) -> int:
    """The HTTP status a trigger's outcome answers with."""
    if outcome.rejection is not None:
        return status_code(outcome.rejection)
    if outcome.accepted:
        return 202
    if not outcome.recorded:
        # The job ran but its outcome was lost: to be asked again later.
        return 503
    return 200 if outcome.succeeded else 500


def outcome_headers(outcome: Outcome) -> dict[str, str]:
    """The headers that go with ``outcome_status(outcome)``."""
    if outcome.rejection is not None:
        return headers(outcome.rejection)
    if not outcome.recorded:
        return {"Retry-After": str(conf.retry_after)}
    return {}
