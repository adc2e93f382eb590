"""Every way a trigger can be refused, each with its one HTTP status code."""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

from cronhooks.conf import conf


class InvalidJobDefinition(ImproperlyConfigured):
    """A job in ``CRONHOOKS["JOBS"]`` cannot be used as written."""

    def __init__(self, message: str, *, check_id: str) -> None:
        super().__init__(message)
        self.check_id = check_id


class TriggerRejected(Exception):
    """A trigger that was refused before its job ran.

    ``code`` is a stable machine-readable reason, stored on the run record and
    sent in the response; ``status_code`` is the HTTP status it maps to.
    """

    status_code = 400
    code = "rejected"
    headers: Mapping[str, str] = {}

    def __init__(
        self, message: str, *, details: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})

    def as_dict(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return error


class MethodNotAllowed(TriggerRejected):
    status_code = 405
    code = "method_not_allowed"

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"{method} is not allowed; use {', '.join(allowed)}.")
        self.headers = {"Allow": ", ".join(allowed)}


class AuthenticationFailed(TriggerRejected):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str, *, invalid_token: bool = False) -> None:
        super().__init__(message)
        # RFC 6750 section 3: say "invalid_token" only when one was presented.
        challenge = 'Bearer realm="cronhooks"'
        if invalid_token:
            challenge += ', error="invalid_token"'
        self.headers = {"WWW-Authenticate": challenge}


class BodyTooLarge(TriggerRejected):
    status_code = 413
    code = "body_too_large"


class InvalidBody(TriggerRejected):
    status_code = 400
    code = "invalid_body"


class InvalidParameters(TriggerRejected):
    status_code = 400
    code = "invalid_parameters"


class InvalidIdempotencyKey(TriggerRejected):
    status_code = 400
    code = "invalid_idempotency_key"


class IdempotencyKeyInProgress(TriggerRejected):
    """The first request with this key is still running its job."""

    status_code = 409
    code = "idempotency_key_in_progress"


class IdempotencyKeyReused(TriggerRejected):
    """The key was first used with other parameters."""

    status_code = 422
    code = "idempotency_key_reused"


class RateLimited(TriggerRejected):
    """Too many requests in the current window (see ratelimit.py)."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class UnknownJob(TriggerRejected):
    status_code = 404
    code = "unknown_job"


class UnknownRun(TriggerRejected):
    status_code = 404
    code = "unknown_run"


# A switch is not flipped back within a scheduler's retries: a Retry-After
# this long tells the Worker (and any polite client) not to retry this tick.
SWITCHED_OFF = {"Retry-After": "3600"}


class JobDisabled(TriggerRejected):
    status_code = 503
    code = "job_disabled"
    headers = SWITCHED_OFF


class JobsDisabled(TriggerRejected):
    status_code = 503
    code = "jobs_disabled"
    headers = SWITCHED_OFF


class JobMisconfigured(TriggerRejected):
    """The job's definition is invalid; ``manage.py check`` says why."""

    status_code = 503
    code = "job_misconfigured"


class CommandUnavailable(TriggerRejected):
    """The job's command (or callable) does not resolve in this process."""

    status_code = 503
    code = "command_unavailable"
    # Only a deploy fixes it: retrying within this tick would be refused too.
    headers = SWITCHED_OFF


class BackendUnavailable(TriggerRejected):
    """Something the run needs (the database, a lock server) is down."""

    status_code = 503
    code = "backend_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(conf.retry_after)}
