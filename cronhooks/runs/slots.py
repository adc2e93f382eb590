"""One run of a job at a time: its active record, and runs whose holder is gone.

A job has at most one run queued or running: the run history's unique
constraint on (job) for those statuses refuses a second record, so two
triggers racing on two machines cannot both be admitted. A trigger that finds
the job's turn taken answers 409 naming the run that has it, unless that run
is stale, and then it is marked abandoned and the trigger takes its place.

A live run keeps its job's lock renewed, and takes it before it is recorded
as running and frees it only after its outcome is recorded: a "running"
record whose job's lock is free, or held by another run, belongs to a holder
that died. A queued run is stale once it has waited past its job's
``queue_timeout``: no task worker took it (and one that does later finds it
abandoned, and does not run it).
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime, timedelta

from django.db import Error, IntegrityError, connections, router, transaction
from django.utils import timezone

from cronhooks.exceptions import BackendUnavailable, Busy
from cronhooks.jobs import Job, all_jobs
from cronhooks.liveness import holder_gone, queue_expired
from cronhooks.locks import get_backend
from cronhooks.log import get_logger
from cronhooks.models import ACTIVE, JobRun

logger = get_logger()

ABANDONED_ERROR = "Its holder stopped without finishing; its lock was no longer held."


class RunActive(Busy):
    """The job's one run at a time is queued or running already."""

    def __init__(self, run: JobRun) -> None:
        queued = run.queued_at if run.status == JobRun.Status.QUEUED else None
        since = (queued or run.started_at).isoformat()
        self.code = f"already_{run.status}"
        super().__init__(
            f"Job {run.job!r} already has a run {run.status} (run {run.run_id}, "
            f"since {since}).",
            details={"run_id": run.run_id, "status": str(run.status), "since": since},
        )


def take_slot(job: Job, run: JobRun) -> None:
    """Record ``run`` (queued or running) as the job's one active run.

    Raises ``RunActive`` naming the run that has the job's turn, or
    ``BackendUnavailable`` when the run history cannot be written.
    """
    alias = router.db_for_write(JobRun)
    for _ in range(3):
        try:
            if _inserted(run, alias):
                return
            active = JobRun.objects.filter(job=run.job, status__in=ACTIVE).first()
            if active is not None and is_stale(job, active):
                abandon(job, active)
                continue
        except Error:
            logger.exception("run_record_failed")
            raise BackendUnavailable("The run history is unavailable.") from None
        # Else it ended between the refused INSERT and the SELECT: try again.
        if active is not None:  # pragma: no branch  (that race)
            raise RunActive(active)
    # Freed and taken again by others three times over, as this waited.
    raise BackendUnavailable(  # pragma: no cover  (a race of three triggers)
        "The run could not be recorded; try again."
    )


def _inserted(run: JobRun, alias: str) -> bool:
    """INSERT the run; False when the job's turn is taken (the constraint)."""
    # A savepoint only inside a caller's transaction, where a refused INSERT
    # would otherwise break it; in autocommit it would cost round trips.
    in_transaction = connections[alias].in_atomic_block
    try:
        with transaction.atomic(using=alias) if in_transaction else nullcontext():
            run.save(force_insert=True, using=alias)
    except IntegrityError:
        return False
    return True


def is_stale(job: Job, run: JobRun, now: datetime | None = None) -> bool:
    """Whether an active run of ``job`` can no longer finish."""
    now = now or timezone.now()
    if run.status == JobRun.Status.QUEUED:
        return queue_expired(job, run, now)
    if run.fencing_token is None:
        # It never held a lock (FAIL_OPEN): nothing tells a live one from a
        # dead one until a whole lock TTL has passed.
        return run.started_at < now - timedelta(seconds=job.lock_ttl)
    return holder_gone(run)


def abandon(job: Job, run: JobRun) -> bool:
    """Mark a stale run abandoned; False when it moved on meanwhile."""
    if run.status == JobRun.Status.QUEUED:
        reason = "queue_timeout"
        error = (
            f"It waited in the queue for more than {job.queue_timeout} s "
            "(queue_timeout): no task worker took it."
        )
    else:
        reason, error = "abandoned", ABANDONED_ERROR
    # Conditional, so a run that finished meanwhile keeps its outcome.
    abandoned = JobRun.objects.filter(id=run.id, status=run.status).update(
        status=JobRun.Status.ABANDONED,
        reason=reason,
        error=error,
        finished_at=timezone.now(),
    )
    if abandoned:
        logger.warning(
            "run_abandoned",
            job=run.job,
            run_id=run.run_id,
            was=run.status,
            reason=reason,
        )
    return bool(abandoned)


def abandon_orphans() -> list[JobRun]:
    """Mark every stale queued or running run abandoned (``cronhooks cleanup``).

    Raises ``LockUnavailable`` when the lock backend cannot be asked who
    holds a lock: nothing is changed then.
    """
    get_backend().ping()
    jobs = all_jobs()
    now = timezone.now()
    abandoned = []
    for run in JobRun.objects.filter(status__in=ACTIVE).order_by("started_at"):
        job = jobs.get(run.job)
        if job is None:
            # No longer declared: nothing will ever run or finish it.
            job = Job(name=run.job, queue_timeout=0, lock_ttl=0)
        if is_stale(job, run, now) and abandon(job, run):
            abandoned.append(run)
    return abandoned
