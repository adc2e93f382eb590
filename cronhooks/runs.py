"""The one way a job runs: HTTP and CLI triggers both come through ``run_job``.

trigger -> job lookup -> parameter validation -> run record -> command ->
record updated. Every attempt is recorded, refused ones included.
"""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import structlog
from django.core.management import call_command
from django.db import DatabaseError
from django.utils import timezone

from cronhooks.conf import conf
from cronhooks.exceptions import (
    BackendUnavailable,
    JobDisabled,
    JobsDisabled,
    TriggerRejected,
)
from cronhooks.jobs import Job, get_job
from cronhooks.models import JobRun

logger = structlog.get_logger("cronhooks")

REDACTED = "[redacted]"
# Parameter names whose values are never stored, even on a refused trigger.
_SECRET_NAME_RE = re.compile(r"token|secret|passw|auth|key|credential", re.IGNORECASE)


@dataclass(frozen=True)
class Trigger:
    """A request to run a job, from any entry point."""

    job: str
    source: JobRun.Source
    correlation_id: str
    params: Mapping[str, object] = field(default_factory=dict)
    client: str = ""


@dataclass(frozen=True)
class Outcome:
    """A recorded run and, if the trigger was refused, why."""

    run: JobRun
    rejection: TriggerRejected | None = None

    @property
    def succeeded(self) -> bool:
        return self.run.status == JobRun.Status.SUCCEEDED


class TailBuffer(io.TextIOBase):
    """A text stream that keeps only the last ``limit`` characters written."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = max(limit, 0)
        self.truncated = False
        self._text = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._text += text
        if len(self._text) > self.limit:
            self.truncated = True
            self._text = self._text[len(self._text) - self.limit :]
        return len(text)

    def getvalue(self) -> str:
        return self._text


def redact(text: str) -> str:
    """Remove every configured token from text bound for a record or response."""
    for token in conf.tokens:
        text = text.replace(token, REDACTED)
    return text


def _redact_params(params: Mapping[str, object]) -> dict[str, object]:
    return {
        str(name)[:100]: REDACTED
        if _SECRET_NAME_RE.search(str(name))
        else (redact(value) if isinstance(value, str) else value)
        for name, value in params.items()
    }


def _bound(trigger: Trigger, run: JobRun) -> AbstractContextManager[None]:
    return structlog.contextvars.bound_contextvars(
        correlation_id=trigger.correlation_id, job=trigger.job, run_id=run.run_id
    )


def _new_run(trigger: Trigger, status: JobRun.Status) -> JobRun:
    return JobRun(
        id=uuid.uuid4(),
        job=trigger.job[:100],
        status=status,
        source=trigger.source,
        correlation_id=trigger.correlation_id,
        client=trigger.client[:64],
        started_at=timezone.now(),
    )


def reject(trigger: Trigger, rejection: TriggerRejected) -> Outcome:
    """Record a refused trigger."""
    run = _new_run(trigger, JobRun.Status.REJECTED)
    run.params = _redact_params(trigger.params)
    run.reason = rejection.code
    run.error = redact(rejection.message)
    run.finished_at = run.started_at
    with _bound(trigger, run):
        logger.warning(
            "trigger_rejected",
            reason=rejection.code,
            error=run.error,
            source=trigger.source,
        )
        try:
            run.save(force_insert=True)
        except DatabaseError:
            logger.exception("run_record_failed")
            return Outcome(run, BackendUnavailable("The run history is unavailable."))
    return Outcome(run, rejection)


def run_job(trigger: Trigger) -> Outcome:
    """Validate, record and run one trigger; never raises for a refusal or a failure."""
    try:
        if not conf.enabled:
            raise JobsDisabled("All jobs are disabled (CRONHOOKS['ENABLED'] is False).")
        job = get_job(trigger.job)
        if not job.enabled:
            raise JobDisabled(f"Job {job.name!r} is disabled.")
        params = job.clean_params(trigger.params)
    except TriggerRejected as rejection:
        return reject(trigger, rejection)

    run = _new_run(trigger, JobRun.Status.RUNNING)
    run.params = params
    with _bound(trigger, run):
        try:
            run.save(force_insert=True)
        except DatabaseError:
            logger.exception("run_record_failed")
            return Outcome(run, BackendUnavailable("The run history is unavailable."))
        logger.info("run_started", params=params, source=trigger.source)
        _execute(job, params, run)
    return Outcome(run)


def _execute(job: Job, params: Mapping[str, Any], run: JobRun) -> None:
    output = TailBuffer(conf.output_limit)
    try:
        if job.callable:
            result = job.load_callable()(**params)
            if result is not None:
                output.write(str(result))
        else:
            call_command(
                job.command,
                *job.args,
                stdout=output,
                stderr=output,
                **job.call_options(params),
            )
    # The job's failure boundary: whatever the command raises (CommandError,
    # a bug, sys.exit) is a failed run, answered with its type and message.
    except (Exception, SystemExit) as error:
        run.status = JobRun.Status.FAILED
        run.reason = "job_failed"
        run.error = redact(": ".join(filter(None, [type(error).__name__, str(error)])))
        logger.exception("run_failed", error=run.error)
    except BaseException:
        run.status = JobRun.Status.FAILED
        run.reason = "interrupted"
        run.error = "The run was interrupted."
        raise
    else:
        run.status = JobRun.Status.SUCCEEDED
    finally:
        run.finished_at = timezone.now()
        run.output = redact(output.getvalue())
        run.output_truncated = output.truncated
        _finish(run)


def _finish(run: JobRun) -> None:
    try:
        run.save(
            update_fields=[
                "status",
                "reason",
                "error",
                "output",
                "output_truncated",
                "finished_at",
            ]
        )
    except DatabaseError:
        # The job has already run: losing its record must not change the
        # answer, but it must be visible.
        logger.exception("run_record_failed", status=run.status)
    level = logging.INFO if run.status == JobRun.Status.SUCCEEDED else logging.ERROR
    logger.log(
        level,
        "run_finished",
        status=run.status,
        duration_ms=run.duration_ms,
    )
