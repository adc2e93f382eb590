"""Running an admitted job: the same code for inline and background runs.

lock -> start the record -> lease kept alive -> command within its time
limit -> outcome recorded -> lock released -> retry (background) -> alerts.

The lock is taken before the record says "running" and freed only after the
outcome is recorded, so a "running" record whose lock is free belongs to a
holder that died (see slots.py).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import Error
from django.utils import timezone

from cronhooks.alerts import notify
from cronhooks.conf import conf
from cronhooks.context import RunContext
from cronhooks.context import _current as _current_run
from cronhooks.exceptions import JobLocked, LockBackendUnavailable, TriggerRejected
from cronhooks.jobs import Job
from cronhooks.locks import (
    Lease,
    LockBackend,
    LockError,
    LockHeld,
    LockUnavailable,
    get_backend,
)
from cronhooks.locks.keeper import LeaseKeeper
from cronhooks.log import get_logger
from cronhooks.models import JobRun
from cronhooks.runs.recording import TailBuffer, save_outcome, storable
from cronhooks.runs.timelimit import RunTimedOut, TimeLimit

logger = get_logger()

# Seconds a task worker waits for a job's lock still held by the run before
# it, which frees it a moment after recording its outcome.
LOCK_WAIT = 10
# Seconds the end of a run keeps trying to record its outcome: the HTTP caller
# of an inline run is waiting; a task worker has no one waiting.
RECORD_WITHIN_INLINE = 10
RECORD_WITHIN_WORKER = 60
# The exit status of a task worker ended to stop a job stuck past its limit.
STUCK_EXIT_STATUS = 70

Start = Callable[[Lease | None], None]
Retry = Callable[[JobRun], bool]


def lock_backend() -> LockBackend:
    try:
        return get_backend()
    except ImproperlyConfigured as error:
        logger.error("lock_backend_misconfigured", error=str(error))
        raise LockBackendUnavailable(
            "The lock backend is misconfigured; run `manage.py check`."
        ) from None


def refusal(error: LockError) -> TriggerRejected:
    """What a lock backend's exception means for the trigger that met it."""
    if isinstance(error, LockHeld):
        holder = error.holder
        if holder is None:
            return JobLocked(error.job)
        return JobLocked(
            error.job, run_id=holder.run_id, since=holder.since.isoformat()
        )
    return LockBackendUnavailable(str(error))


class JobLease:
    """The job's lock for one run: taken by ``acquire``, freed by ``release``."""

    def __init__(self, job: Job, run: JobRun) -> None:
        self.job = job
        self.run = run
        self.lease: Lease | None = None
        self.backend: LockBackend | None = None

    def acquire(self, *, wait: float = 0) -> Lease | None:
        """Take the lock, waiting up to ``wait`` seconds while another run
        holds it; None when running without one (``FAIL_OPEN``)."""
        self.backend = lock_backend()
        deadline = time.monotonic() + wait
        while True:
            try:
                self.lease = self.backend.acquire(
                    self.job.name, self.run.run_id, self.job.lock_ttl
                )
            except LockHeld as error:
                if time.monotonic() >= deadline:
                    raise refusal(error) from None
                time.sleep(0.1)
                continue
            except LockUnavailable as error:
                if not conf.lock_fail_open:
                    logger.error("lock_unavailable", error=str(error), exc_info=True)
                    raise refusal(error) from error
                logger.warning("running_without_lock", error=str(error), exc_info=True)
            return self.lease

    def release(self) -> bool:
        """Free the lock; False (and the run flagged) when it was not ours to
        the end: found taken by another holder, or unconfirmable."""
        if self.lease is None or self.backend is None:
            return True
        try:
            released = self.backend.release(self.lease)
        except LockUnavailable as error:
            # It expires by itself after its TTL, but nothing confirms the
            # run held it to the end.
            logger.error("lock_release_failed", error=str(error))
            released = False
        else:
            if not released:
                logger.error(
                    "lock_lost", reason="found taken by another holder at release"
                )
        if not released:
            self.run.lock_lost = True
        return released


class Execution:
    """One run of ``job``, from taking its lock to its alerts."""

    def __init__(
        self,
        job: Job,
        run: JobRun,
        params: Mapping[str, Any],
        *,
        in_worker: bool = False,
        retry: Retry | None = None,
    ) -> None:
        self.job = job
        self.run = run
        self.params = params
        # Only a task worker's process may be ended to stop a stuck job.
        self.in_worker = in_worker
        self.retry = retry
        self.lease = JobLease(job, run)
        self.output = TailBuffer(conf.output_limit)
        self.recorded = False
        self._finish_lock = threading.Lock()
        self._finished = False

    def perform(self, start: Start, *, lock_wait: float = 0) -> None:
        """Take the lock, let ``start`` record the run, run it and finish it.

        ``start`` records the run as running (or refuses it, raising a
        ``TriggerRejected``, and then the lock is freed again). So do lock
        failures: ``JobLocked`` and ``LockBackendUnavailable``.
        """
        run = self.run
        lease = self.lease.acquire(wait=lock_wait)
        run.fencing_token = lease.fencing_token if lease else None
        run.lock_lost = lease is None
        try:
            start(lease)
        except BaseException:
            self.lease.release()
            raise
        logger.info(
            "run_started",
            params=run.params,
            source=run.source,
            attempt=run.attempt,
            fencing_token=run.fencing_token,
        )
        notify.run_started(self.job, run)
        keeper = LeaseKeeper(self.lease.backend, lease) if lease else None  # type: ignore[arg-type]
        context = RunContext(
            run_id=run.run_id,
            job=self.job.name,
            correlation_id=run.correlation_id,
            params=self.params,
            fencing_token=run.fencing_token,
            _lost=keeper.lost if keeper else _set_event(),
        )
        try:
            with keeper or nullcontext():
                self._call(context)
        finally:
            if keeper is not None and keeper.lost.is_set():
                run.lock_lost = True
            self.finish()

    def _call(self, context: RunContext) -> None:
        run, job = self.run, self.job
        token = _current_run.set(context)
        limit = TimeLimit(
            job.timeout,
            grace=conf.timeout_grace,
            on_stuck=self._stop_stuck if self.in_worker else None,
        )
        try:
            with limit:
                if job.callable:
                    result = job.load_callable()(**self.params)
                    if result is not None:
                        self.output.write(str(result))
                else:
                    call_command(
                        job.command,
                        *job.args,
                        stdout=self.output,
                        stderr=self.output,
                        **job.call_options(self.params),
                    )
        except RunTimedOut:
            _timed_out(run, job)
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
            run.output = storable(self.output.getvalue())
            run.output_truncated = self.output.truncated

    def finish(self, *, stopping: bool = False) -> None:
        """Record the outcome, free the lock, queue a retry, alert; once.

        ``stopping``: the job is still running in this process, which is about
        to end it. The lock is then freed last, just before the end, so that
        no other run starts while it still runs: its retry waits for the lock.
        """
        with self._finish_lock:
            # The watchdog of a stuck job and the job's own thread, should it
            # come back, may both get here.
            if self._finished:  # pragma: no cover  (see _stop_stuck)
                return
            self._finished = True
        run = self.run
        within = RECORD_WITHIN_WORKER if self.in_worker else RECORD_WITHIN_INLINE
        # Recorded while still holding the lock, so the next run never sees
        # this one "running" without a holder.
        self.recorded = save_outcome(run, within=within)
        if not self.recorded:
            # Its lock is left to expire: until then no retry of this trigger
            # runs the job again on the strength of a stale "running" record.
            logger.error("run_outcome_not_recorded", **_whole_outcome(run))
        level = logging.INFO if run.status == JobRun.Status.SUCCEEDED else logging.ERROR
        logger.log(
            level,
            "run_finished",
            status=run.status,
            duration_ms=run.duration_ms,
            lock_lost=run.lock_lost,
        )
        if self.recorded and not stopping:
            # Before the retry: ImmediateBackend runs it right away, here.
            self._release()
        retried = bool(self.recorded and self.retry and self.retry(run))
        notify.run_finished(self.job, run, final=not retried)
        if self.recorded and stopping:  # pragma: no cover  (see _stop_stuck)
            self._release()

    def _release(self) -> None:
        if not self.lease.release():
            _save_lock_lost(self.run)

    # Tested by test_task_workers.py's deaf job, in a worker process that this
    # ends before coverage can write what it measured.
    def _stop_stuck(self) -> None:  # pragma: no cover
        """The job ignored its time limit: record it, then end this worker."""
        run = self.run
        run.status = JobRun.Status.TIMED_OUT
        run.reason = "timed_out"
        run.error = (
            f"The job ran past its time limit of {self.job.timeout} s and did not "
            f"stop within {conf.timeout_grace} s; its task worker process was ended."
        )
        run.finished_at = timezone.now()
        run.output = storable(self.output.getvalue())
        run.output_truncated = self.output.truncated
        self.finish(stopping=True)
        logger.critical("task_worker_ending", reason="a job would not stop")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(STUCK_EXIT_STATUS)


def _set_event() -> threading.Event:
    """No lease at all (FAIL_OPEN): the run never knew itself exclusive."""
    event = threading.Event()
    event.set()
    return event


def _save_lock_lost(run: JobRun) -> None:
    try:
        JobRun.objects.filter(id=run.id).update(lock_lost=True)
    except Error:
        logger.exception("run_record_failed", status=run.status)


def _whole_outcome(run: JobRun) -> dict[str, Any]:
    return {
        "status": run.status,
        "reason": run.reason,
        "error": run.error,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_ms": run.duration_ms,
        "fencing_token": run.fencing_token,
        "lock_lost": run.lock_lost,
        "output": run.output,
        "output_truncated": run.output_truncated,
    }


def _timed_out(run: JobRun, job: Job) -> None:
    run.status = JobRun.Status.TIMED_OUT
    run.reason = "timed_out"
    run.error = f"The job ran past its time limit of {job.timeout} s and was stopped."
    logger.error("run_timed_out", timeout=job.timeout)


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
