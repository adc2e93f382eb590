"""The one way a job runs: HTTP and CLI triggers both come through ``run_job``.

trigger -> job lookup -> parameter validation -> lock -> run record ->
command (lease kept alive) -> lock released -> record updated. Every attempt is
recorded, refused ones included.
"""

from __future__ import annotations

import io
import logging
import math
import re
import threading
import traceback
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import structlog
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import DatabaseError
from django.utils import timezone

from cronhooks import alerts, idempotency
from cronhooks.conf import conf
from cronhooks.context import RunContext
from cronhooks.context import _current as _current_run
from cronhooks.exceptions import (
    BackendUnavailable,
    IdempotencyKeyInProgress,
    JobDisabled,
    JobsDisabled,
    TriggerRejected,
)
from cronhooks.jobs import JOB_NAME_RE, Job, get_job
from cronhooks.locks import Lease, LockBackend, LockUnavailable, get_backend
from cronhooks.locks.keeper import LeaseKeeper
from cronhooks.log import get_logger
from cronhooks.models import JobRun

logger = get_logger()

REDACTED = "[redacted]"
MAX_RECORDED_PARAMS = 50
_ABANDONED = {
    "status": JobRun.Status.ABANDONED,
    "reason": "abandoned",
    "error": "Its holder stopped without finishing; its lock was no longer held.",
}
MAX_RECORDED_VALUE = 200
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
    # The caller's Idempotency-Key, already validated; "" for none.
    idempotency_key: str = ""


@dataclass(frozen=True)
class Outcome:
    """A recorded run and, if the trigger was refused, why."""

    run: JobRun
    rejection: TriggerRejected | None = None
    # Set when an Idempotency-Key was already completed: ``run`` is then the
    # first run, whose result is answered again, and this the replay's record.
    replay: JobRun | None = None

    @property
    def succeeded(self) -> bool:
        return self.rejection is None and self.run.status == JobRun.Status.SUCCEEDED

    @property
    def status_code(self) -> int:
        """The HTTP status this outcome answers with."""
        if self.rejection is not None:
            return self.rejection.status_code
        return 200 if self.succeeded else 500

    def as_dict(self) -> dict[str, Any]:
        """The result as HTTP responses and ``cronhooks run --json`` give it."""
        run = self.run
        body: dict[str, Any] = {
            "status": run.status,
            "job": run.job,
            "run_id": run.run_id,
            "correlation_id": run.correlation_id,
        }
        if self.rejection is not None:
            # Even when the record could not be written (and still says
            # "running"), the trigger was refused.
            body["status"] = JobRun.Status.REJECTED
            body["error"] = self.rejection.as_dict()
            return body
        body.update(
            params=run.params,
            started_at=run.started_at.isoformat(),
            finished_at=run.finished_at.isoformat() if run.finished_at else None,
            duration_ms=run.duration_ms,
            fencing_token=run.fencing_token,
            lock_lost=run.lock_lost,
            output=run.output,
            output_truncated=run.output_truncated,
        )
        if not self.succeeded:
            body["error"] = {"code": run.reason, "message": run.error}
        if self.replay is not None:
            body["replayed"] = True
        return body


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


def storable(text: str, limit: int | None = None) -> str:
    """Text fit for the run history and logs: tokens redacted, and no NUL or
    lone surrogate, which PostgreSQL refuses."""
    text = redact(text).replace("\x00", "\\x00")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if limit is None else text[:limit]


def _recorded_value(value: object) -> object:
    if isinstance(value, bool) or (isinstance(value, int) and abs(value) < 2**53):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    text = value if isinstance(value, str) else repr(value)
    return storable(text, MAX_RECORDED_VALUE)


def recorded_params(params: Mapping[str, object]) -> dict[str, object]:
    """Parameters as the history, logs and responses may show them."""
    return {
        storable(str(name), 100): REDACTED
        if _SECRET_NAME_RE.search(str(name))
        else _recorded_value(value)
        for name, value in list(params.items())[:MAX_RECORDED_PARAMS]
    }


def recorded_job_name(name: str) -> str:
    """The job name as given, or its escaped repr when it is not a job name."""
    return name if JOB_NAME_RE.fullmatch(name) else repr(name)[:100]


def _bound(trigger: Trigger, run: JobRun) -> AbstractContextManager[None]:
    return structlog.contextvars.bound_contextvars(
        correlation_id=trigger.correlation_id, job=run.job, run_id=run.run_id
    )


def _new_run(trigger: Trigger, status: JobRun.Status) -> JobRun:
    return JobRun(
        id=uuid.uuid4(),
        job=recorded_job_name(trigger.job),
        status=status,
        source=trigger.source,
        correlation_id=trigger.correlation_id,
        client=trigger.client[:64],
        started_at=timezone.now(),
        idempotency_key=storable(trigger.idempotency_key, 255),
    )


def reject(trigger: Trigger, rejection: TriggerRejected) -> Outcome:
    """Record a refused trigger."""
    run = _new_run(trigger, JobRun.Status.REJECTED)
    run.params = recorded_params(trigger.params)
    run.reason = rejection.code
    run.error = storable(rejection.message)
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
    """Validate, lock, record and run one trigger.

    Never raises for a refusal or a failure: both come back in the ``Outcome``.
    """
    run = _new_run(trigger, JobRun.Status.RUNNING)
    key_claimed = False
    try:
        if not conf.enabled:
            raise JobsDisabled("All jobs are disabled (CRONHOOKS['ENABLED'] is False).")
        job = get_job(trigger.job)
        if not job.enabled:
            raise JobDisabled(f"Job {job.name!r} is disabled.")
        params = job.clean_params(trigger.params)
        if trigger.idempotency_key:
            first = _claim(job, trigger.idempotency_key, params, run)
            if first is not None:
                return _replay(trigger, first, params)
            key_claimed = True
        backend = _lock_backend()
        with _bound(trigger, run):
            lease = _acquire(backend, job, run)
        if key_claimed:
            _confirm(job, trigger.idempotency_key, run, backend, lease)
    except TriggerRejected as rejection:
        if key_claimed:
            idempotency.release(job, trigger.idempotency_key, run.id)
        return reject(trigger, rejection)

    run.params = recorded_params(params)
    run.fencing_token = lease.fencing_token if lease else None
    run.lock_lost = lease is None
    with _bound(trigger, run):
        try:
            if lease is not None:
                _abandon_others(run)
            run.save(force_insert=True)
        except DatabaseError:
            logger.exception("run_record_failed")
            _release(backend, lease, run)
            if key_claimed:
                idempotency.release(job, trigger.idempotency_key, run.id)
            return Outcome(run, BackendUnavailable("The run history is unavailable."))
        logger.info(
            "run_started",
            params=run.params,
            source=trigger.source,
            fencing_token=run.fencing_token,
        )
        alerts.run_started(job, run)
        keeper = LeaseKeeper(backend, lease) if lease else None
        context = RunContext(
            run_id=run.run_id,
            job=job.name,
            correlation_id=trigger.correlation_id,
            params=params,
            fencing_token=run.fencing_token,
            _lost=keeper.lost if keeper else _set_event(),
        )
        try:
            with keeper or nullcontext():
                _execute(job, params, run, context)
        finally:
            if keeper is not None and keeper.lost.is_set():
                run.lock_lost = True
            # Record the outcome while still holding the lock, so the next
            # run never sees this one "running" without a holder.
            _finish(run)
            if not _release(backend, lease, run):
                _save_lock_lost(run)
        alerts.run_finished(job, run)
    return Outcome(run)


def _claim(job: Job, key: str, params: Mapping[str, Any], run: JobRun) -> JobRun | None:
    try:
        return idempotency.claim(job, key, params, run.id)
    except DatabaseError:
        logger.exception("idempotency_claim_failed", job=job.name)
        raise BackendUnavailable("The idempotency key store is unavailable.") from None


def _confirm(
    job: Job, key: str, run: JobRun, backend: LockBackend, lease: Lease | None
) -> None:
    """Refuse the run if a retry took its key over while it was stalled."""
    try:
        owned = idempotency.confirm(job, key, run.id)
    except DatabaseError:
        logger.exception("idempotency_claim_failed", job=job.name)
        _release(backend, lease, run)
        raise BackendUnavailable("The idempotency key store is unavailable.") from None
    if not owned:
        _release(backend, lease, run)
        raise IdempotencyKeyInProgress(
            "A retry with this Idempotency-Key took it over while this request "
            "was waiting; it runs the job instead."
        )


def _replay(trigger: Trigger, first: JobRun, params: Mapping[str, Any]) -> Outcome:
    """Answer a completed key with its first run's result, running nothing."""
    replay = _new_run(trigger, JobRun.Status.REPLAYED)
    replay.params = recorded_params(params)
    replay.reason = "idempotent_replay"
    replay.replay_of = first.id
    replay.finished_at = replay.started_at
    with _bound(trigger, replay):
        logger.info("run_replayed", replay_of=first.run_id, status=first.status)
        try:
            replay.save(force_insert=True)
        except DatabaseError:
            # The first run's result was just read; it is still the answer.
            logger.exception("run_record_failed")
    return Outcome(first, replay=replay)


def _set_event() -> threading.Event:
    """No lease at all (FAIL_OPEN): the run never knew itself exclusive."""
    event = threading.Event()
    event.set()
    return event


def _save_lock_lost(run: JobRun) -> None:
    try:
        JobRun.objects.filter(id=run.id).update(lock_lost=True)
    except DatabaseError:
        logger.exception("run_record_failed", status=run.status)


def _lock_backend() -> LockBackend:
    try:
        return get_backend()
    except ImproperlyConfigured as error:
        logger.error("lock_backend_misconfigured", error=str(error))
        raise LockUnavailable(
            "The lock backend is misconfigured; run `manage.py check`."
        ) from None


def _acquire(backend: LockBackend, job: Job, run: JobRun) -> Lease | None:
    try:
        return backend.acquire(job.name, run.run_id, job.lock_ttl)
    except LockUnavailable as error:
        if not conf.lock_fail_open:
            logger.error("lock_unavailable", error=str(error), exc_info=True)
            raise
        logger.warning("running_without_lock", error=str(error), exc_info=True)
        return None


def _abandon_others(run: JobRun) -> None:
    """Runs of this job left "running" cannot be: we hold its lock now."""
    abandoned = (
        JobRun.objects.filter(job=run.job, status=JobRun.Status.RUNNING)
        .exclude(id=run.id)
        .update(**_ABANDONED, finished_at=timezone.now())
    )
    if abandoned:
        logger.warning("runs_abandoned", count=abandoned)


def abandon_orphans() -> list[JobRun]:
    """Mark runs left "running" whose job's lock they no longer hold.

    A live run keeps its lock renewed, so a "running" record whose job's lock
    is free, or held by another run, belongs to a holder that died.
    """
    backend = get_backend()
    abandoned = []
    for run in JobRun.objects.filter(status=JobRun.Status.RUNNING):
        holder = backend.holder(run.job)
        if holder is not None and holder.run_id == run.run_id:
            continue
        # Conditional, so a run that finished meanwhile keeps its outcome.
        if JobRun.objects.filter(id=run.id, status=JobRun.Status.RUNNING).update(
            **_ABANDONED, finished_at=timezone.now()
        ):
            abandoned.append(run)
    if abandoned:
        logger.warning("runs_abandoned", count=len(abandoned))
    return abandoned


def _release(backend: LockBackend, lease: Lease | None, run: JobRun) -> bool:
    """Free the lease; False when it was found taken by another holder."""
    if lease is None:
        return True
    try:
        released = backend.release(lease)
    except LockUnavailable as error:
        # The lock expires by itself after its TTL.
        logger.error("lock_release_failed", error=str(error))
        return True
    if not released and not run.lock_lost:
        run.lock_lost = True
        logger.error("lock_lost", reason="found taken by another holder at release")
        return False
    return True


def _execute(
    job: Job, params: Mapping[str, Any], run: JobRun, context: RunContext
) -> None:
    output = TailBuffer(conf.output_limit)
    token = _current_run.set(context)
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
    except SystemExit as error:
        # sys.exit() and sys.exit(0) end a command successfully, as in a shell.
        if error.code in (None, 0):
            run.status = JobRun.Status.SUCCEEDED
        else:
            _failed(run, error)
    # The job's failure boundary: whatever the command raises (CommandError,
    # a bug) is a failed run, answered with its type and message.
    except Exception as error:
        _failed(run, error)
    except BaseException:
        run.status = JobRun.Status.FAILED
        run.reason = "interrupted"
        run.error = "The run was interrupted."
        raise
    else:
        run.status = JobRun.Status.SUCCEEDED
    finally:
        _current_run.reset(token)
        run.finished_at = timezone.now()
        run.output = storable(output.getvalue())
        run.output_truncated = output.truncated


def _failed(run: JobRun, error: BaseException) -> None:
    run.status = JobRun.Status.FAILED
    run.reason = "job_failed"
    run.error = storable(": ".join(filter(None, [type(error).__name__, str(error)])))
    # The traceback goes to the logs only, redacted like the rest: the
    # exception's own message may quote a secret.
    logger.error(
        "run_failed",
        error=run.error,
        traceback=storable("".join(traceback.format_exception(error))),
    )


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
                "lock_lost",
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
        lock_lost=run.lock_lost,
    )
