"""Every way a trigger can be refused.

A refusal says what went wrong (``code``, ``message``, ``details``) and the
facts an answer needs (the methods allowed, when to retry); which HTTP status
and headers it is answered with is ``responses.py``'s business alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured


class InvalidJobDefinition(ImproperlyConfigured):
    """A job in ``CRONHOOKS["JOBS"]`` cannot be used as written."""

    def __init__(self, message: str, *, check_id: str) -> None:
        super().__init__(message)
        self.check_id = check_id


class TriggerRejected(Exception):
    """A trigger that was refused before its job ran.

    ``code`` is a stable machine-readable reason, stored on the run record and
    sent in the response.
    """

    code = "rejected"

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
    code = "method_not_allowed"

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"{method} is not allowed; use {', '.join(allowed)}.")
        self.allowed = allowed


class AuthenticationFailed(TriggerRejected):
    code = "unauthorized"

    def __init__(
        self, message: str, *, invalid_token: bool = False, presented: bool = False
    ) -> None:
        super().__init__(message)
        # A token was presented, and it is not one of ours.
        self.invalid_token = invalid_token
        # A credential of some kind was presented (not merely missing): a
        # failure to count even where anonymous callers are welcome (/health).
        self.presented = presented


class NetworkNotAllowed(TriggerRejected):
    """The caller's address is outside ``ALLOWED_NETWORKS``: refused whatever
    it carries, before it is authenticated."""

    code = "network_not_allowed"


class BodyTooLarge(TriggerRejected):
    code = "body_too_large"


class InvalidBody(TriggerRejected):
    code = "invalid_body"


class InvalidParameters(TriggerRejected):
    code = "invalid_parameters"


class InvalidIdempotencyKey(TriggerRejected):
    code = "invalid_idempotency_key"


class Busy(TriggerRejected):
    """The job, or the request's key, is taken by a run still going."""


class IdempotencyKeyInProgress(Busy):
    """The first request with this key is still running its job."""

    code = "idempotency_key_in_progress"


class JobLocked(Busy):
    """Another run holds the job's lock (``locks.LockHeld``)."""

    code = "already_running"

    def __init__(
        self, job: str, *, run_id: str | None = None, since: str | None = None
    ) -> None:
        details = {}
        message = f"Job {job!r} is already running."
        if run_id is not None and since is not None:
            details = {"run_id": run_id, "status": "running", "since": since}
            message = f"Job {job!r} is already running (run {run_id}, since {since})."
        super().__init__(message, details=details)


class IdempotencyKeyReused(TriggerRejected):
    """The key was first used with other parameters."""

    code = "idempotency_key_reused"


class RateLimited(TriggerRejected):
    """Too many requests in the current window (see ratelimit.py)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        # Seconds until the window that refused it ends.
        self.retry_after = retry_after


class UnknownJob(TriggerRejected):
    code = "unknown_job"


class UnknownRun(TriggerRejected):
    code = "unknown_run"


class UnknownEndpoint(TriggerRejected):
    """A path under cronhooks' URLs that none of its views serves."""

    code = "not_found"


class SwitchedOff(TriggerRejected):
    """Refused until someone changes the settings or deploys: retrying within
    the scheduler's tick would be refused too."""


class JobDisabled(SwitchedOff):
    code = "job_disabled"


class JobPaused(SwitchedOff):
    """Someone paused the job (``cronhooks pause``) until they resume it."""

    code = "job_paused"


class JobsDisabled(SwitchedOff):
    code = "jobs_disabled"


class Misconfigured(SwitchedOff):
    """The deployment cannot run this trigger as configured: only a deploy
    fixes it, so it is switched off until then."""


class CommandUnavailable(Misconfigured):
    """The job's command (or callable) does not resolve in this process."""

    code = "command_unavailable"


class JobMisconfigured(Misconfigured):
    """The job's definition is invalid; ``manage.py check`` says why."""

    code = "job_misconfigured"


class MetricsUnavailable(Misconfigured):
    """GET /cron/metrics without prometheus-client installed."""

    code = "metrics_unavailable"


class TasksUnavailable(Misconfigured):
    """A background run was asked for, but no task backend is configured."""

    code = "tasks_unavailable"


class BackendUnavailable(TriggerRejected):
    """Something the run needs (the database, a lock server) is down."""

    code = "backend_unavailable"


class LockBackendUnavailable(BackendUnavailable):
    """The lock backend could not be reached (``locks.LockUnavailable``), or
    is misconfigured: fail closed."""

    code = "lock_unavailable"


class QueueUnavailable(BackendUnavailable):
    """The task backend refused or could not take the run."""

    code = "queue_unavailable"
