"""Whether a run the history calls queued or running can still finish.

Asked by the job status (/health), by the one-run-at-a-time slot (is the run
in the way dead?) and by idempotency keys (will the key's run ever answer?):
here so that none of them imports another for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ImproperlyConfigured

from cronhooks.jobs import Job
from cronhooks.locks import LockUnavailable, get_backend
from cronhooks.log import get_logger
from cronhooks.models import JobRun

logger = get_logger()


def queue_expired(job: Job, run: JobRun, now: datetime) -> bool:
    """Whether a queued run has waited past its job's queue_timeout."""
    queued_at = run.queued_at or run.started_at
    return queued_at < now - timedelta(seconds=job.queue_timeout)


def holder_gone(run: JobRun) -> bool:
    """Whether the job's lock is no longer held by ``run`` (False if unknown)."""
    try:
        holder = get_backend().holder(run.job)
    except (LockUnavailable, ImproperlyConfigured):
        # Cannot tell; "running" is what the record says.
        logger.warning("lock_holder_unknown", job=run.job, exc_info=True)
        return False
    return holder is None or holder.run_id != run.run_id
