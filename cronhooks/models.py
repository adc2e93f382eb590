"""Run history: every trigger attempt, refused ones included (a burst of
identical refusals as one row with its ``count``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connections, models
from django.db.models.functions import RowNumber


class JobRunQuerySet(models.QuerySet["JobRun"]):
    def executed(self) -> JobRunQuerySet:
        """Runs whose job actually started (not refused or replayed triggers)."""
        return self.exclude(status__in=NOT_EXECUTED)

    def last_runs(self, jobs: Iterable[str]) -> dict[str, JobRun]:
        """Job name -> its last executed run, in one query."""
        return {
            job: latest.last_run
            for job, latest in self.latest_runs(jobs).items()
            if latest.last_run is not None
        }

    def latest_runs(self, jobs: Iterable[str]) -> dict[str, LatestRuns]:
        """Each job's last executed run, last success and last failure, in
        one query.

        On PostgreSQL and SQLite each is one descent of a partial index
        (see ``Meta.indexes``) per job, so the cost follows the number of
        jobs, never the size of the history. Elsewhere a window query over
        the jobs' history answers the same.
        """
        names = sorted(set(jobs))
        connection = connections[self.db]
        if connection.vendor in _JOB_NAMES:
            runs: Iterable[JobRun] = self.raw(*_latest_runs_sql(connection, names))
        else:
            runs = self.filter(job__in=names).executed().latest_per_job(by_status=True)
        latest: dict[str, LatestRuns] = {}
        for run in sorted(runs, key=_newness, reverse=True):
            found = latest.setdefault(run.job, LatestRuns(last_run=run))
            if run.status == JobRun.Status.SUCCEEDED and found.last_success is None:
                found.last_success = run
            elif run.status in FAILURES and found.last_failure is None:
                found.last_failure = run
        return latest

    def delete_in_batches(self, size: int) -> int:
        """Delete these runs ``size`` at a time; how many were deleted.

        One DELETE of a million rows holds its row locks, and grows the
        transaction log, for as long as it runs; each batch is its own short
        statement and only ``size`` ids are ever held in memory.
        """
        deleted = 0
        while batch := list(self.values_list("pk", flat=True)[:size]):
            count, _ = JobRun.objects.filter(pk__in=batch).delete()
            deleted += count
        return deleted

    def latest_per_job(self, *, by_status: bool = False) -> JobRunQuerySet:
        """The newest run of each job (or of each status of each job), in one
        query whatever the history size."""
        partition = [models.F("job"), models.F("status")] if by_status else "job"
        return self.annotate(
            position=models.Window(
                RowNumber(),
                partition_by=partition,
                order_by=[models.F("started_at").desc(), models.F("id").desc()],
            )
        ).filter(position=1)


class JobRun(models.Model):
    class Status(models.TextChoices):
        # Accepted for a background run, waiting for a task worker.
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        # Stopped at the job's time limit (its ``timeout``).
        TIMED_OUT = "timed_out", "Timed out"
        REJECTED = "rejected"
        # Left "running" by a holder that died (its lock expired), or left
        # "queued" past the job's queue_timeout with no worker taking it.
        ABANDONED = "abandoned"
        # A retry with an Idempotency-Key already completed: answered with
        # the result of the run in ``replay_of``, without running the job.
        REPLAYED = "replayed"

    class Source(models.TextChoices):
        HTTP = "http", "HTTP"
        CLI = "cli", "CLI"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices)
    source = models.CharField(max_length=8, choices=Source.choices)
    params = models.JSONField(default=dict, blank=True)
    correlation_id = models.CharField(max_length=64, db_index=True)
    client = models.CharField(
        max_length=64, blank=True, help_text="Caller address, for HTTP triggers."
    )
    reason = models.CharField(
        max_length=32, blank=True, help_text="Why a trigger was refused or failed."
    )
    error = models.TextField(blank=True)
    output = models.TextField(blank=True, help_text="Tail of stdout and stderr.")
    output_truncated = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    fencing_token = models.BigIntegerField(
        null=True, blank=True, help_text="Grows with every grant of the job's lock."
    )
    idempotency_key = models.CharField(max_length=255, blank=True)
    replay_of = models.UUIDField(
        null=True, blank=True, help_text="The run whose result a replay answered with."
    )
    queued_at = models.DateTimeField(
        null=True, blank=True, help_text="When a background run was accepted."
    )
    attempt = models.PositiveSmallIntegerField(
        default=1, help_text="1 for a trigger's run, 2 and up for its retries."
    )
    retry_of = models.UUIDField(
        null=True,
        blank=True,
        db_index=True,
        help_text="The first attempt, when this run is a retry of it.",
    )
    lock_lost = models.BooleanField(
        default=False,
        help_text="The run was not exclusive for its whole duration: its lock "
        "could not be renewed, was taken by another holder, or was never held.",
    )
    count = models.PositiveIntegerField(
        default=1,
        # Also the database's: rows written with SQL alone count once.
        db_default=1,
        help_text="How many identical refused triggers this record stands for, "
        "from started_at to finished_at (see runs/refusals.py); 1 for a run.",
    )

    objects = JobRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # Each job's last run, last success and last failure: one index
            # descent each (JobRunQuerySet.latest_runs), whatever the size of
            # the history. "Last run" skips refused triggers, which anyone can
            # add without a token, and replays, which ran nothing.
            models.Index(
                fields=["job", "-started_at", "-id"],
                name="cronhooks_run_job_executed",
                condition=~models.Q(status__in=["rejected", "replayed"]),
            ),
            models.Index(
                fields=["job", "-started_at", "-id"],
                name="cronhooks_run_job_succeeded",
                condition=models.Q(status="succeeded"),
            ),
            models.Index(
                fields=["job", "-started_at", "-id"],
                name="cronhooks_run_job_failed",
                condition=models.Q(status__in=["failed", "timed_out", "abandoned"]),
            ),
            models.Index(fields=["started_at"], name="cronhooks_run_started"),
        ]
        constraints = [
            # One run of a job at a time is decided here, when it is recorded:
            # a second queued or running record of a job cannot be inserted.
            models.UniqueConstraint(
                fields=["job"],
                condition=models.Q(status__in=["queued", "running"]),
                name="cronhooks_run_one_active_per_job",
            )
        ]

    def __str__(self) -> str:
        return f"{self.job} {self.status} at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def run_id(self) -> str:
        return str(self.id)

    @property
    def duration(self) -> timedelta | None:
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def duration_ms(self) -> int | None:
        duration = self.duration
        return None if duration is None else round(duration.total_seconds() * 1000)


NOT_EXECUTED = (JobRun.Status.REJECTED, JobRun.Status.REPLAYED)
# At most one of these per job (see the constraint above).
ACTIVE = (JobRun.Status.QUEUED, JobRun.Status.RUNNING)
# Final outcomes of a run that was executed, or meant to be.
FINISHED = (
    JobRun.Status.SUCCEEDED,
    JobRun.Status.FAILED,
    JobRun.Status.TIMED_OUT,
    JobRun.Status.ABANDONED,
)
FAILURES = (JobRun.Status.FAILED, JobRun.Status.TIMED_OUT, JobRun.Status.ABANDONED)


@dataclass
class LatestRuns:
    """A job's newest runs, as /health and `cronhooks status` judge it by."""

    last_run: JobRun
    last_success: JobRun | None = None
    last_failure: JobRun | None = None


# The job names as a table of one column "job", from one JSON parameter: any
# number of jobs in one statement, whatever the backend's parameter limit.
_JOB_NAMES = {
    "postgresql": "SELECT jsonb_array_elements_text(%s::jsonb) AS job",
    "sqlite": "SELECT value AS job FROM json_each(%s)",
}
# Each is the condition of one of JobRun's partial indexes. Spelt as
# literals (fixed statuses, not input): a database only uses a partial index
# for a query whose WHERE visibly implies the index's, which a parameter
# does not.
_LATEST = (
    f"NOT (x.status IN {tuple(map(str, NOT_EXECUTED))})",
    f"x.status = '{JobRun.Status.SUCCEEDED}'",
    f"x.status IN {tuple(map(str, FAILURES))}",
)


def _latest_runs_sql(connection: Any, names: list[str]) -> tuple[str, list[Any]]:
    table = connection.ops.quote_name(JobRun._meta.db_table)
    select_names = _JOB_NAMES[connection.vendor]
    # A correlated subquery per job: an index descent that stops at the
    # first row, where a join or a window would read every row of the job.
    # Only the model's table and the constants above are spelt into the
    # SQL; the job names travel as the one parameter.
    branches = " UNION ALL ".join(
        f"SELECT (SELECT x.id FROM {table} x WHERE x.job = n.job AND "  # noqa: S608
        f"{condition} ORDER BY x.started_at DESC, x.id DESC LIMIT 1) FROM names n"
        for condition in _LATEST
    )
    sql = (
        f"WITH names AS ({select_names}) SELECT * FROM {table} WHERE id IN ({branches})"  # noqa: S608, E501
    )
    return sql, [json.dumps(names)]


def _newness(run: JobRun) -> tuple[Any, uuid.UUID]:
    # The order of the index: ties in started_at go to the greater id.
    return (run.started_at, run.id)


class IdempotencyKey(models.Model):
    """An Idempotency-Key seen for a job, and the run it started.

    The unique (job, key) pair is what makes two concurrent requests with one
    key run the job once: only one INSERT can win.
    """

    job = models.CharField(max_length=100)
    key = models.CharField(max_length=255)
    # SHA-256 of the validated parameters: the same key with other
    # parameters is a client bug, answered 422.
    fingerprint = models.CharField(max_length=64)
    # Not a foreign key: the key is claimed before the run is recorded.
    run_id = models.UUIDField()
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "key"], name="cronhooks_idempotency_job_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.job} key {self.key}"


class JobLock(models.Model):
    """The database lock backend's lease: one row per job, kept for its fence."""

    job = models.CharField(max_length=100, primary_key=True)
    owner = models.CharField(max_length=64, blank=True)
    run_id = models.CharField(max_length=36, blank=True)
    fence = models.BigIntegerField(default=0)
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"lock of {self.job}"


class UsedSignature(models.Model):
    """A request signature already accepted (``authenticators.signature``).

    The unique digest is what makes a signature usable once across every
    process and machine: only one INSERT can win. Kept until its timestamp
    leaves the accepted window; ``cronhooks prune`` deletes it then.
    """

    # SHA-256 of the signed message, whichever secret signed it.
    digest = models.CharField(max_length=64, primary_key=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"signature {self.digest[:12]}"


class JobPause(models.Model):
    """A pause of a job: its triggers are refused while it is open
    (``resumed_at`` empty).

    Each pause is its own row, kept when the job resumes, so the rows are
    also the record of who paused and resumed a job, when and why: the run
    history holds runs, and a pause is not one.
    """

    job = models.CharField(max_length=100)
    paused_at = models.DateTimeField()
    paused_by = models.CharField(max_length=150, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-paused_at"]
        constraints = [
            # One open pause per job; its index is also the trigger's one
            # lookup ("is this job paused?").
            models.UniqueConstraint(
                fields=["job"],
                condition=models.Q(resumed_at__isnull=True),
                name="cronhooks_pause_one_open_per_job",
            )
        ]

    def __str__(self) -> str:
        return f"{self.job} paused at {self.paused_at:%Y-%m-%d %H:%M:%S}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "paused_at": self.paused_at.isoformat(),
            "paused_by": self.paused_by or None,
            "reason": self.reason or None,
        }
