"""Pausing a job: its triggers are refused with 503 ``job_paused`` until it
is resumed.

A pause lives in the database (``JobPause``), so it survives restarts and
every process, on every machine, sees it at once. Pausing and resuming are
logged, and every pause stays in the table with who opened and closed it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from cronhooks.log import get_logger
from cronhooks.models import JobPause
from cronhooks.redaction import redact

logger = get_logger()


def open_pause(job: str) -> JobPause | None:
    """The job's pause, if it is paused: one lookup of the open-pause index."""
    return JobPause.objects.filter(job=job, resumed_at__isnull=True).first()


def open_pauses(jobs: Iterable[str] | None = None) -> dict[str, JobPause]:
    """Job name -> its open pause, for the paused ones among ``jobs`` (all
    paused jobs by default), in one query."""
    pauses = JobPause.objects.filter(resumed_at__isnull=True)
    if jobs is not None:
        pauses = pauses.filter(job__in=sorted(set(jobs)))
    return {pause.job: pause for pause in pauses.order_by()}


def pause_job(job: str, *, by: str = "", reason: str = "") -> tuple[JobPause, bool]:
    """Pause ``job``; the open pause and whether this call opened it (False
    when it was paused already: that pause, and its reason, stay)."""
    # A reason is typed in a hurry, during an incident: never keep a secret.
    reason = redact(reason)[:200]
    pause = JobPause(
        job=job, paused_at=timezone.now(), paused_by=by[:150], reason=reason
    )
    try:
        # The savepoint keeps a caller's transaction usable after a refusal.
        with transaction.atomic():
            pause.save(force_insert=True)
    except IntegrityError:
        existing = open_pause(job)
        if existing is None:  # pragma: no cover  (resumed in between: try again)
            return pause_job(job, by=by, reason=reason)
        return existing, False
    logger.warning("job_paused", job=job, paused_by=pause.paused_by, reason=reason)
    return pause, True


def resume_job(job: str, *, by: str = "") -> JobPause | None:
    """Resume ``job``; the pause it closed, or None when it was not paused."""
    pause = open_pause(job)
    if pause is None:
        return None
    now = timezone.now()
    # Conditional: of two concurrent resumes, one closes the pause.
    closed = JobPause.objects.filter(id=pause.id, resumed_at__isnull=True).update(
        resumed_at=now, resumed_by=by[:150]
    )
    if not closed:  # pragma: no cover  (a concurrent resume won)
        return None
    pause.resumed_at, pause.resumed_by = now, by[:150]
    logger.warning(
        "job_resumed",
        job=job,
        resumed_by=pause.resumed_by,
        paused_since=pause.paused_at.isoformat(),
    )
    return pause
