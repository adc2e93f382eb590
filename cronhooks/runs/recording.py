"""What a run record may hold, and writing a run's outcome so that it lasts.

Text bound for the history, logs and answers loses every secret (see
redaction.py) and anything PostgreSQL refuses; an outcome's write is retried on a fresh
connection, because a run that took minutes must not lose its result to one
dropped connection.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Mapping
from contextlib import suppress

from django.db import Error, connections, router
from django.utils import timezone

from cronhooks.jobs import JOB_NAME_RE
from cronhooks.log import get_logger
from cronhooks.models import JobRun
from cronhooks.redaction import REDACTED, looks_secret, redact

logger = get_logger()

MAX_RECORDED_PARAMS = 50
MAX_RECORDED_VALUE = 200
# The fields a run's end writes.
OUTCOME_FIELDS = (
    "status",
    "reason",
    "error",
    "output",
    "output_truncated",
    "finished_at",
    "lock_lost",
)
# Pauses between attempts at writing an outcome: short first, for a blip.
_FIRST_PAUSE = 0.05
_LONGEST_PAUSE = 1.0


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


def storable(text: str, limit: int | None = None) -> str:
    """Text fit for the run history and logs: secrets redacted, and no NUL or
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
        if looks_secret(str(name))
        else _recorded_value(value)
        for name, value in list(params.items())[:MAX_RECORDED_PARAMS]
    }


def recorded_job_name(name: str) -> str:
    """The job name as given, or its escaped repr when it is not a job name
    (a token sent as one, by mistake, among them)."""
    text = redact(name)
    return text if JOB_NAME_RE.fullmatch(text) else repr(text)[:100]


def save_outcome(run: JobRun, *, within: float) -> bool:
    """Write the run's outcome, retrying for ``within`` seconds; False if lost.

    Each retry starts from a fresh connection: after a database restart the
    old one is dead for good. Inside a caller's transaction the connection
    cannot be replaced, so there is one attempt.
    """
    alias = router.db_for_write(JobRun)
    deadline = time.monotonic() + within
    pause = _FIRST_PAUSE
    values = {name: getattr(run, name) for name in OUTCOME_FIELDS}
    while True:
        try:
            JobRun.objects.using(alias).filter(id=run.id).update(**values)
        # django.db.Error, not only DatabaseError: a closed connection raises
        # InterfaceError.
        except Error:
            connection = connections[alias]
            if connection.in_atomic_block or time.monotonic() + pause > deadline:
                logger.exception("run_record_failed", status=run.status)
                return False
            logger.warning("run_record_retrying", status=run.status, exc_info=True)
            with suppress(Error):
                connection.close()
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)
        else:
            return True


def finish_unstarted(run: JobRun, status: JobRun.Status, code: str, error: str) -> bool:
    """End a queued run that will not run (refused after it was queued).

    Only while it is still queued: another worker may have taken it (and it
    must keep running), or it may have been abandoned. False when it had moved
    on. A record that cannot be written stays queued until its queue_timeout.
    """
    now = timezone.now()
    try:
        moved_on = not JobRun.objects.filter(
            id=run.id, status=JobRun.Status.QUEUED
        ).update(
            status=status,
            reason=code,
            error=storable(error),
            # It never started: its record's start was its queueing.
            started_at=now,
            finished_at=now,
        )
    except Error:
        logger.exception("run_record_failed", status=status)
        moved_on = False
    if moved_on:
        return False
    run.status, run.reason, run.error = status, code, storable(error)
    run.started_at = run.finished_at = now
    return True
