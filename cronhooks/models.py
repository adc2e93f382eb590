"""Run history: every trigger attempt, refused ones included (a burst of
identical refusals as one row with its ``count``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.db import models
from django.db.models.functions import RowNumber


class JobRunQuerySet(models.QuerySet["JobRun"]):
    def executed(self) -> JobRunQuerySet:
        """Runs whose job actually started (not refused or replayed triggers)."""
        return self.exclude(status__in=NOT_EXECUTED)

    def last_runs(self, jobs: Iterable[str]) -> dict[str, JobRun]:
        """Job name -> its last executed run, in one query."""
        runs = self.filter(job__in=list(jobs)).executed().latest_per_job()
        return {run.job: run for run in runs}

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
            # "Last run of each job" skips refused triggers, which anyone
            # can add without a token, and replays, which ran nothing.
            models.Index(
                fields=["job", "-started_at"],
                name="cronhooks_run_job_executed",
                condition=~models.Q(status__in=["rejected", "replayed"]),
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
