"""What a trigger comes to, as HTTP answers and ``cronhooks run`` render it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from cronhooks import responses
from cronhooks.conf import conf
from cronhooks.exceptions import TriggerRejected
from cronhooks.models import ACTIVE, JobRun


def status_path(run: JobRun) -> str:
    """Where a run's status is served, relative to the site."""
    return reverse("cronhooks:run", args=[run.run_id])


def run_json(run: JobRun, *, retries: Sequence[str] | None = None) -> dict[str, Any]:
    """A run as the trigger's answer and its status URL describe it."""
    body: dict[str, Any] = {
        "status": run.status,
        "job": run.job,
        "run_id": run.run_id,
        "correlation_id": run.correlation_id,
        "params": run.params,
        "attempt": run.attempt,
        # Identical refusals counted on this record (see runs/refusals.py).
        "count": run.count,
        "retry_of": None if run.retry_of is None else str(run.retry_of),
        "queued_at": _iso(run.queued_at),
        # A queued run has not started: its record's start is its queueing.
        "started_at": None
        if run.status == JobRun.Status.QUEUED
        else _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_ms": run.duration_ms,
        "fencing_token": run.fencing_token,
        "lock_lost": run.lock_lost,
        "output": run.output,
        "output_truncated": run.output_truncated,
    }
    if retries is not None:
        body["retries"] = list(retries)
    if run.status not in (*ACTIVE, JobRun.Status.SUCCEEDED):
        body["error"] = {"code": run.reason, "message": run.error}
    return body


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


@dataclass(frozen=True)
class Outcome:
    """A recorded run and, if the trigger was refused, why."""

    run: JobRun
    rejection: TriggerRejected | None = None
    # Set when an Idempotency-Key was already used: ``run`` is then the key's
    # run (its latest attempt), answered again, and this the replay's record.
    replay: JobRun | None = None
    # The run finished but its outcome could not be written to the history.
    recorded: bool = True

    @property
    def accepted(self) -> bool:
        """Queued or running in the background: answered 202."""
        return self.rejection is None and self.run.status in ACTIVE

    @property
    def succeeded(self) -> bool:
        return self.rejection is None and self.run.status == JobRun.Status.SUCCEEDED

    @property
    def status_url(self) -> str:
        """The run's status URL: absolute under BASE_URL, else the path."""
        return conf.base_url + status_path(self.run)

    def as_dict(self) -> dict[str, Any]:
        """The result as HTTP responses and ``cronhooks run --json`` give it."""
        run = self.run
        if self.rejection is not None:
            # Even when the record could not be written (and still says
            # "running"), the trigger was refused.
            return {
                "status": JobRun.Status.REJECTED,
                "job": run.job,
                # None for a refusal that was not recorded: no run to point at.
                "run_id": run.run_id if self.recorded else None,
                "correlation_id": run.correlation_id,
                "error": responses.error_body(self.rejection),
            }
        body = run_json(run)
        if self.accepted:
            body["status_url"] = self.status_url
        if not self.recorded:
            body["recorded"] = False
            body["record_error"] = {
                "code": "outcome_not_recorded",
                "message": "The job ran, but the run history could not store its "
                "outcome; this answer is the only record of it.",
            }
        if self.replay is not None:
            body["replayed"] = True
        return body
