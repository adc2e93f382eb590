"""May this trigger run? The one way in: HTTP and CLI triggers both call ``run_job``.

job lookup -> switches -> parameters -> idempotency claim -> one run at a time
(the run record) -> inline: execution.py runs it now; background: it is
enqueued and answered 202. Every attempt is recorded, refused ones included.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from django.db import DatabaseError
from django.utils import timezone

from cronhooks import idempotency
from cronhooks.conf import conf
from cronhooks.exceptions import (
    BackendUnavailable,
    IdempotencyKeyInProgress,
    JobDisabled,
    JobPaused,
    JobsDisabled,
    TriggerRejected,
)
from cronhooks.jobs import Job, get_job
from cronhooks.locks import Lease
from cronhooks.log import get_logger
from cronhooks.models import JobRun
from cronhooks.pauses import open_pause
from cronhooks.runs.execution import Execution
from cronhooks.runs.outcome import Outcome
from cronhooks.runs.recording import recorded_job_name, recorded_params, storable
from cronhooks.runs.refusals import record_refusal
from cronhooks.runs.slots import take_slot
from cronhooks.runs.tasks import enqueue_on_commit, task_backend
from cronhooks.targets import ensure_runnable

logger = get_logger()


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
    # The caller asks for a background run (Prefer: respond-async, or
    # `cronhooks run --background`); a job's own "background" always is one.
    background: bool = False


def run_job(trigger: Trigger) -> Outcome:
    """Admit, then run or enqueue, one trigger.

    Never raises for a refusal or a failure: both come back in the ``Outcome``.
    """
    run = _new_run(trigger, JobRun.Status.RUNNING)
    with _bound(trigger, run):
        try:
            if not conf.enabled:
                raise JobsDisabled(
                    "All jobs are disabled (CRONHOOKS['ENABLED'] is not True)."
                )
            job = get_job(trigger.job)
            if not job.enabled:
                raise JobDisabled(f"Job {job.name!r} is disabled.")
            _ensure_not_paused(job)
            ensure_runnable(job)
            params = job.clean_params(trigger.params)
            run.params = recorded_params(params)
            if job.background or trigger.background:
                task_backend()  # refuses now when there is nothing to enqueue on
                run.status = JobRun.Status.QUEUED
                run.queued_at = run.started_at
            with ExitStack() as stack:
                first = stack.enter_context(
                    _claimed(job, trigger.idempotency_key, params, run)
                )
                if first is not None:
                    return _replay(trigger, first, params)
                if run.status == JobRun.Status.QUEUED:
                    return _enqueue(job, run, params)
                return _run_inline(job, run, params, trigger.idempotency_key)
        except TriggerRejected as rejection:
            if run._state.adding:
                return reject(trigger, rejection)
            # Recorded as queued, then the queue refused it: that record is
            # now the rejected one.
            logger.warning(
                "trigger_rejected", reason=rejection.code, source=trigger.source
            )
            return Outcome(run, rejection)


def _ensure_not_paused(job: Job) -> None:
    """Refuse a paused job's trigger; one indexed lookup of its open pause."""
    try:
        pause = open_pause(job.name)
    except DatabaseError:
        logger.exception("pause_lookup_failed")
        raise BackendUnavailable("The job's pause cannot be read.") from None
    if pause is not None:
        since = pause.paused_at.isoformat()
        details = {"paused_at": since}
        if pause.reason:
            details["reason"] = pause.reason
        raise JobPaused(
            f"Job {job.name!r} is paused (since {since}); resume it with "
            f"`manage.py cronhooks resume {job.name}`.",
            details=details,
        )


def _run_inline(job: Job, run: JobRun, params: Mapping[str, Any], key: str) -> Outcome:
    def start(lease: Lease | None) -> None:
        if key:
            _confirm(job, key, run)
        take_slot(job, run)

    execution = Execution(job, run, params)
    execution.perform(start)
    return Outcome(run, recorded=execution.recorded)


def _enqueue(job: Job, run: JobRun, params: Mapping[str, Any]) -> Outcome:
    take_slot(job, run)
    enqueue_on_commit(run, params)
    logger.info("run_queued", params=run.params, source=run.source)
    return Outcome(run)


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


def _bound(trigger: Trigger, run: JobRun) -> AbstractContextManager[None]:
    return structlog.contextvars.bound_contextvars(
        correlation_id=trigger.correlation_id, job=run.job, run_id=run.run_id
    )


def reject(
    trigger: Trigger, rejection: TriggerRejected, *, record: bool = True
) -> Outcome:
    """Record a refused trigger; ``record=False`` only logs it (a caller who
    has not authenticated must not be able to write to the history).

    A refusal identical to one recorded moments before is counted on that
    record (see refusals.py): the answer's ``run_id`` is then that record's.
    """
    run = _new_run(trigger, JobRun.Status.REJECTED)
    run.params = recorded_params(trigger.params)
    run.reason = rejection.code
    run.error = storable(rejection.message)
    run.finished_at = run.started_at
    failure: DatabaseError | None = None
    if record:
        try:
            record_refusal(run)
        except DatabaseError as error:
            failure = error
    # Bound after recording: the run_id logged is the record's.
    with _bound(trigger, run):
        logger.warning(
            "trigger_rejected",
            reason=rejection.code,
            error=run.error,
            source=trigger.source,
            client=trigger.client,
            recorded=record and failure is None,
        )
        if failure is not None:
            logger.error("run_record_failed", exc_info=failure)
            return Outcome(run, BackendUnavailable("The run history is unavailable."))
    return Outcome(run, rejection, recorded=record)


@contextmanager
def _claimed(
    job: Job, key: str, params: Mapping[str, Any], run: JobRun
) -> Iterator[JobRun | None]:
    """Reserve the Idempotency-Key for ``run``, freeing it again if the trigger
    is refused before the run is recorded; yields the run to answer with
    instead when the key was used before."""
    if not key:
        yield None
        return
    try:
        first = idempotency.claim(job, key, params, run.id)
    except DatabaseError:
        logger.exception("idempotency_claim_failed", job=job.name)
        raise BackendUnavailable("The idempotency key store is unavailable.") from None
    if first is not None:
        yield first
        return
    try:
        yield None
    except TriggerRejected:
        # A refused trigger has no result worth replaying; the retry that
        # follows (after a 503, say) must be free to run the job.
        idempotency.release(job, key, run.id)
        raise


def _confirm(job: Job, key: str, run: JobRun) -> None:
    """Refuse the run if a retry took its key over while it was stalled."""
    try:
        owned = idempotency.confirm(job, key, run.id)
    except DatabaseError:
        logger.exception("idempotency_claim_failed", job=job.name)
        raise BackendUnavailable("The idempotency key store is unavailable.") from None
    if not owned:
        raise IdempotencyKeyInProgress(
            "A retry with this Idempotency-Key took it over while this request "
            "was waiting; it runs the job instead."
        )


def _replay(trigger: Trigger, first: JobRun, params: Mapping[str, Any]) -> Outcome:
    """Answer a used key with its run's result (or its 202), running nothing."""
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
