"""Background runs on django.tasks: enqueueing a queued run, and running it.

Only the django.tasks API is used: ``Task.enqueue`` on the backend that the
project's ``TASKS`` setting names under ``CRONHOOKS["TASK_BACKEND"]``. Django
6.0+ ships ``django.tasks``; Django 5.2 has the ``django-tasks`` backport.
A backend written against the backport (django-tasks-rq) gets the backport's
``Task`` and one written against Django's (django-tasks-db on Django 6) gets
Django's: the task is built from the backend's own ``task_class``.

The task is ``cronhooks.runs.tasks.execute_run``, served by this module's
``__getattr__`` so that it is built for the configured backend when a worker
or an enqueue first asks for it, never at import.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import timedelta
from importlib import import_module
from types import ModuleType
from typing import Any

import structlog
from django.db import Error, router, transaction
from django.utils import timezone

from cronhooks.alerts import notify
from cronhooks.conf import conf
from cronhooks.exceptions import (
    BackendUnavailable,
    JobDisabled,
    LockBackendUnavailable,
    QueueUnavailable,
    TasksUnavailable,
    TriggerRejected,
)
from cronhooks.jobs import Job, get_job
from cronhooks.locks import Lease
from cronhooks.log import get_logger
from cronhooks.models import JobRun
from cronhooks.runs.execution import LOCK_WAIT, Execution
from cronhooks.runs.recording import finish_unstarted
from cronhooks.runs.slots import take_slot

logger = get_logger()

TASK_NAME = "execute_run"
# What the task returns when the run was not this worker's to run.
NOT_QUEUED = "not_queued"
# Task backends with no workers: the ImmediateBackend runs a task in the call
# that enqueues it, the DummyBackend never runs it.
INLINE_BACKENDS = frozenset({"ImmediateBackend", "DummyBackend"})
# The share of a retry's delay added at random, so that retries of runs that
# failed together do not all come back together.
RETRY_JITTER = 0.2
# Set while this process enqueues: a backend that runs the task right away
# (ImmediateBackend) runs it inside the trigger, where the process must
# never be ended to stop a stuck job.
_enqueuing: ContextVar[bool] = ContextVar("cronhooks_enqueuing", default=False)


def tasks_api() -> ModuleType | None:
    """``django.tasks``, else the ``django_tasks`` backport, else None."""
    for name in ("django.tasks", "django_tasks"):
        try:
            return import_module(name)
        except ImportError:
            continue
    return None


def task_backend() -> Any:
    """The backend instance behind ``TASK_BACKEND``.

    Raises ``TasksUnavailable`` when no tasks API is installed, or the alias is
    not in ``settings.TASKS`` or its backend cannot be loaded.
    """
    api = tasks_api()
    if api is None:
        raise TasksUnavailable(
            "Background runs need django.tasks (Django 6.0+) or the django-tasks "
            "package; install django-cronhooks[tasks]."
        )
    try:
        return api.task_backends[conf.task_backend]
    # InvalidTaskBackend(Error) differs between Django and the backport; both
    # are ImproperlyConfigured, and an import error of the backend is too.
    except Exception as error:
        logger.error("task_backend_misconfigured", error=str(error))
        raise TasksUnavailable(
            f"The task backend {conf.task_backend!r} is not usable; run "
            "`manage.py check`."
        ) from None


def runs_in_workers() -> bool:
    """Whether the task backend runs tasks in workers, away from the request."""
    try:
        backend = task_backend()
    except TasksUnavailable:
        return False
    return type(backend).__name__ not in INLINE_BACKENDS


def _execute_run(run_id: str, params: dict[str, Any]) -> str:
    """The task: run one queued run; returns the status it ended with."""
    return run_queued(run_id, params)


# Named as the module serves it, so that its module path imports the Task.
_execute_run.__name__ = _execute_run.__qualname__ = TASK_NAME


def __getattr__(name: str) -> Any:
    if name == TASK_NAME:
        return build_task()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_task(run_after: Any = None) -> Any:
    backend = task_backend()
    return backend.task_class(
        priority=0,
        func=_execute_run,
        backend=conf.task_backend,
        queue_name=conf.task_queue,
        run_after=run_after if backend.supports_defer else None,
        takes_context=False,
    )


def enqueue(run: JobRun, params: Mapping[str, Any], *, delay: float = 0) -> None:
    """Hand the run to the task backend, or raise ``QueueUnavailable``."""
    run_after = timezone.now() + timedelta(seconds=delay) if delay else None
    token = _enqueuing.set(True)
    try:
        task = build_task(run_after)
        result = task.enqueue(run.run_id, dict(params))
    # The queue's boundary: whatever the backend raises (a Redis or database
    # error, a refusal, a backend that cannot be loaded) means the run is not
    # queued, and must not stay so.
    except Exception as error:
        logger.exception("run_enqueue_failed", error=type(error).__name__)
        raise QueueUnavailable(
            "The task queue is unavailable; the run was not queued."
        ) from None
    finally:
        _enqueuing.reset(token)
    logger.info("run_enqueued", task_id=str(result.id), backend=conf.task_backend)


def enqueue_on_commit(run: JobRun, params: Mapping[str, Any]) -> None:
    """Enqueue once the queued record is committed (at once in autocommit).

    Raises ``QueueUnavailable`` when enqueueing failed right away. Deferred to
    the commit of a caller's transaction, a failure marks the run rejected
    and is logged: by then there is no one left to answer.
    """
    failure: list[TriggerRejected] = []

    def send() -> None:
        try:
            enqueue(run, params)
        except TriggerRejected as rejection:
            failure.append(rejection)
            finish_unstarted(
                run, JobRun.Status.REJECTED, rejection.code, rejection.message
            )

    transaction.on_commit(send, using=router.db_for_write(JobRun))
    if failure:
        raise failure[0]


def retry_delay(job: Job, attempt: int) -> float:
    """Seconds before attempt number ``attempt`` (2 and up) starts."""
    base = float(job.retry_delay * 2 ** (attempt - 2))
    return base * (1 + random.uniform(0, RETRY_JITTER))  # noqa: S311  (not crypto)


def schedule_retry(job: Job, run: JobRun, params: Mapping[str, Any]) -> bool:
    """Queue the next attempt of a failed or timed-out run; False if none."""
    if run.status not in (JobRun.Status.FAILED, JobRun.Status.TIMED_OUT):
        return False
    if run.attempt > job.retries:
        return False
    now = timezone.now()
    attempt = run.attempt + 1
    delay = retry_delay(job, attempt)
    retry = JobRun(
        job=run.job,
        status=JobRun.Status.QUEUED,
        source=run.source,
        params=run.params,
        correlation_id=run.correlation_id,
        client=run.client,
        started_at=now,
        # When it is due: its queue_timeout counts from then, not from now.
        queued_at=now + timedelta(seconds=delay),
        attempt=attempt,
        retry_of=run.retry_of or run.id,
    )
    try:
        take_slot(job, retry)
        enqueue(retry, params, delay=delay)
    except TriggerRejected as rejection:
        # A new trigger took the job's turn (409), or the queue is down: this
        # attempt is the last, and its failure is alerted as final.
        logger.warning("run_retry_not_queued", reason=rejection.code)
        if not retry._state.adding:
            finish_unstarted(
                retry, JobRun.Status.REJECTED, rejection.code, rejection.message
            )
        return False
    logger.info(
        "run_retry_queued",
        retry_run_id=retry.run_id,
        attempt=retry.attempt,
        delay_seconds=round(delay, 1),
    )
    return True


def run_queued(run_id: str, params: Mapping[str, Any]) -> str:
    """Run a queued run in a task worker (or inline, for ImmediateBackend)."""
    run = JobRun.objects.filter(id=run_id).first()
    if run is None:
        logger.warning("run_missing", run_id=run_id)
        return "missing"
    with structlog.contextvars.bound_contextvars(
        correlation_id=run.correlation_id, job=run.job, run_id=run.run_id
    ):
        if run.status != JobRun.Status.QUEUED:
            # Abandoned past its queue_timeout, or delivered twice.
            return _not_queued()
        try:
            job = get_job(run.job)
            if not job.active:
                raise JobDisabled(f"Job {job.name!r} is disabled.")
            cleaned = job.clean_params(params)
        except TriggerRejected as rejection:
            if not _end_unstarted(run, JobRun.Status.REJECTED, rejection):
                return _not_queued()  # pragma: no cover  (taken a moment ago)
            return str(run.status)
        execution = Execution(
            job,
            run,
            cleaned,
            in_worker=not _enqueuing.get(),
            retry=lambda finished: schedule_retry(job, finished, cleaned),
        )
        try:
            execution.perform(_start_queued(run), lock_wait=LOCK_WAIT)
        except NotQueued:
            return _not_queued()
        except LockBackendUnavailable as rejection:
            # The lock backend is down: a failure, which another attempt may
            # get past.
            if not _end_unstarted(run, JobRun.Status.FAILED, rejection):
                return _not_queued()  # pragma: no cover  (down as another runs it)
            retried = schedule_retry(job, run, cleaned)
            notify.run_finished(job, run, final=not retried)
        except TriggerRejected as rejection:
            # Another holder kept the job's lock past LOCK_WAIT: if that is
            # another worker running this very run, it is left alone.
            if not _end_unstarted(run, JobRun.Status.REJECTED, rejection):
                return _not_queued()
        return str(run.status)


def _end_unstarted(
    run: JobRun, status: JobRun.Status, rejection: TriggerRejected
) -> bool:
    """Record why the run will not run; False when it had moved on."""
    if not finish_unstarted(run, status, rejection.code, rejection.message):
        return False
    logger.error("run_refused", reason=rejection.code, error=rejection.message)
    return True


def _not_queued() -> str:
    """Another worker took the run (it was delivered twice), or it was
    abandoned, while this one waited: not this worker's to run or to end."""
    logger.warning("run_not_queued")
    return NOT_QUEUED


def _start_queued(run: JobRun) -> Callable[[Lease | None], None]:
    """Mark the queued run running, once its lock is held; only one worker can."""

    def start(lease: Lease | None) -> None:
        now = timezone.now()
        try:
            started = JobRun.objects.filter(
                id=run.id, status=JobRun.Status.QUEUED
            ).update(
                status=JobRun.Status.RUNNING,
                started_at=now,
                fencing_token=run.fencing_token,
                lock_lost=run.lock_lost,
            )
        except Error:
            logger.exception("run_record_failed", status=JobRun.Status.RUNNING)
            raise BackendUnavailable("The run history is unavailable.") from None
        if not started:
            raise NotQueued("The run is no longer queued.")
        run.status = JobRun.Status.RUNNING
        run.started_at = now

    return start


class NotQueued(TriggerRejected):
    """Another worker took the run, or it was abandoned, while this one waited."""

    code = "not_queued"
