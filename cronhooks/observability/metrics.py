"""``GET /cron/metrics``: the run history in the Prometheus text format.

Every number is read from the database at scrape time, by a collector on a
private registry, so every gunicorn worker answers the same whichever
process (a web worker, a task worker, the CLI) ran the job; nothing is kept
in a process's memory or on its disk, as prometheus-client's multiprocess
mode would need.

A scrape costs three queries whatever the size of the history and the
number of jobs: one GROUP BY over today's runs (a range of the started_at
index), and the two of ``job_statuses`` (each job's last runs, the open
pauses).

The counters count the runs started since 00:00 UTC: a count over a sliding
window would fall each time an old run left it, which Prometheus takes for
a reset and reads as a burst of runs; a count over the whole history would
read more of it at every scrape and fall at each ``cronhooks prune``. Each
day's counts start from zero, an honest reset that ``rate()`` and
``increase()`` handle, and say so in their ``_created`` samples.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import timezone as tz
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from cronhooks.jobs import all_jobs
from cronhooks.models import JobRun
from cronhooks.status import job_statuses

# Jobs take from a second to hours: buckets for that, not for web requests.
DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600)
# The outcomes that measure how long a job takes. Abandoned runs do not: their
# end is when someone noticed, not when they stopped.
TIMED = (JobRun.Status.SUCCEEDED, JobRun.Status.FAILED, JobRun.Status.TIMED_OUT)
# The job label of refusals of names the registry does not hold: anyone with
# a token could otherwise add a series per name it invents.
UNKNOWN_JOB = ""


def counting_since(now: datetime) -> datetime:
    """Where today's counts start: 00:00 UTC, the same in every process."""
    return now.astimezone(tz.utc).replace(hour=0, minute=0, second=0, microsecond=0)


class RunHistoryCollector(Collector):
    """The metrics of every job in the registry, read from the database."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now or timezone.now()
        since = counting_since(now)
        jobs = all_jobs()
        yield from _run_counts(set(jobs), since)
        yield from _job_states(now)


def _run_counts(jobs: set[str], since: datetime) -> Iterator[Metric]:
    created = since.timestamp()
    runs = CounterMetricFamily(
        "cronhooks_runs",
        "Runs recorded since 00:00 UTC, by outcome (refused triggers are 'rejected').",
        labels=["job", "status"],
    )
    refusals = CounterMetricFamily(
        "cronhooks_refusals",
        "Triggers refused since 00:00 UTC, by reason (job is empty for names "
        "that are not jobs).",
        labels=["job", "reason"],
    )
    durations = HistogramMetricFamily(
        "cronhooks_run_duration_seconds",
        "How long runs that finished since 00:00 UTC took (succeeded, failed "
        "or timed out).",
        labels=["job"],
    )
    counted: dict[tuple[str, str], int] = defaultdict(int)
    refused: dict[tuple[str, str], int] = defaultdict(int)
    buckets: dict[str, list[int]] = defaultdict(lambda: [0] * len(DURATION_BUCKETS))
    timed: dict[str, int] = defaultdict(int)
    total_seconds: dict[str, float] = defaultdict(float)
    for row in _grouped_runs(since):
        job, status = row["job"], row["status"]
        if job not in jobs:
            if status == JobRun.Status.REJECTED:
                refused[UNKNOWN_JOB, row["reason"]] += row["runs"]
            continue
        counted[job, status] += row["runs"]
        if status == JobRun.Status.REJECTED:
            refused[job, row["reason"]] += row["runs"]
        if status in TIMED:
            timed[job] += row["runs"]
            total_seconds[job] += (row["seconds"] or timedelta()).total_seconds()
            for position in range(len(DURATION_BUCKETS)):
                buckets[job][position] += row[f"le_{position}"]
    for (job, status), count in sorted(counted.items()):
        runs.add_metric([job, status], count, created=created)
    for (job, reason), count in sorted(refused.items()):
        refusals.add_metric([job, reason], count, created=created)
    for job in sorted(timed):
        cumulative = [
            (_bound(bound), count)
            for bound, count in zip(DURATION_BUCKETS, buckets[job], strict=True)
        ]
        durations.add_metric(
            [job], [*cumulative, ("+Inf", timed[job])], total_seconds[job]
        )
    yield runs
    yield refusals
    yield durations


def _bound(seconds: float) -> str:
    return str(float(seconds))


def _grouped_runs(since: datetime) -> list[dict[str, Any]]:
    """Today's runs (refusals counted as their records count them) by job,
    status and reason, with the durations of the timed ones summed and
    counted per bucket: one query."""
    duration = ExpressionWrapper(
        F("finished_at") - F("started_at"), output_field=DurationField()
    )
    is_timed = Q(status__in=TIMED, finished_at__isnull=False)
    per_bucket = {
        f"le_{position}": Count(
            "id",
            filter=is_timed & Q(LessThanOrEqual(duration, timedelta(seconds=bound))),
        )
        for position, bound in enumerate(DURATION_BUCKETS)
    }
    rows = (
        JobRun.objects.filter(started_at__gte=since)
        .order_by()
        .values("job", "status", "reason")
        .annotate(
            # A record counts every refusal folded into it (FOLD_REFUSALS).
            runs=Sum("count"),
            seconds=Sum(duration, filter=is_timed),
            **per_bucket,
        )
    )
    return [dict(row) for row in rows]


def _job_states(now: datetime) -> Iterator[Metric]:
    last_success = GaugeMetricFamily(
        "cronhooks_last_success_timestamp_seconds",
        "When the job's last successful run finished (absent: never).",
        labels=["job"],
    )
    overdue = GaugeMetricFamily(
        "cronhooks_job_overdue",
        "1 when a tick of the job's schedule has passed its grace with no "
        "success since.",
        labels=["job"],
    )
    paused = GaugeMetricFamily(
        "cronhooks_job_paused", "1 while the job is paused.", labels=["job"]
    )
    in_progress = GaugeMetricFamily(
        "cronhooks_runs_in_progress", "Runs of the job running now.", labels=["job"]
    )
    queued = GaugeMetricFamily(
        "cronhooks_runs_queued",
        "Background runs of the job waiting for a task worker.",
        labels=["job"],
    )
    for name, status in sorted(job_statuses(now=now).items()):
        success = status.last_success
        if success is not None and success.finished_at is not None:
            last_success.add_metric([name], success.finished_at.timestamp())
        overdue.add_metric([name], int(status.overdue))
        paused.add_metric([name], int(status.paused))
        last = status.last_run
        running = (
            last is not None
            and last.status == JobRun.Status.RUNNING
            and not status.last_run_abandoned
        )
        in_progress.add_metric([name], int(running))
        waiting = last is not None and last.status == JobRun.Status.QUEUED
        queued.add_metric([name], int(waiting))
    yield from (last_success, overdue, paused, in_progress, queued)


def render_metrics(now: datetime | None = None) -> bytes:
    """The text a scrape answers with."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunHistoryCollector(now))
    return generate_latest(registry)
