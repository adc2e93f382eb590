"""A read-only view of the run history: records are written only by runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest

from cronhooks.jobs import all_jobs
from cronhooks.models import JobRun

# ModelAdmin is generic only in django-stubs, not at run time.
if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[JobRun]
else:
    ModelAdmin = admin.ModelAdmin


@admin.register(JobRun)
class JobRunAdmin(ModelAdmin):
    list_display = [
        "job",
        "status",
        "reason",
        "count",
        "attempt",
        "source",
        "started_at",
        "duration_ms",
        "correlation_id",
    ]
    list_filter = ["status", "source", "job", "reason", "started_at"]
    search_fields = ["=id", "=correlation_id", "=idempotency_key", "job"]
    date_hierarchy = "started_at"
    ordering = ["-started_at"]
    readonly_fields = [
        "id",
        "job",
        "job_description",
        "status",
        "reason",
        "source",
        "client",
        "correlation_id",
        "idempotency_key",
        "replay_of",
        "params",
        "count",
        "attempt",
        "retry_of",
        "queued_at",
        "started_at",
        "finished_at",
        "duration_ms",
        "fencing_token",
        "lock_lost",
        "error",
        "output",
        "output_truncated",
    ]

    @admin.display(description="what the job does")
    def job_description(self, run: JobRun) -> str:
        # From today's registry: the history keeps runs of jobs since removed.
        job = all_jobs().get(run.job)
        if job is None:
            return "(no longer in CRONHOOKS['JOBS'])"
        return job.description or "-"

    @admin.display(description="duration (ms)")
    def duration_ms(self, run: JobRun) -> int | None:
        return run.duration_ms

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: Any | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: Any | None = None
    ) -> bool:
        return False
