"""Where each job stands against its schedule: overdue, failing or fine.

A scheduled job is *overdue* when a tick of its cron expression, plus its
grace period, has passed without a run of it succeeding since that tick.
Measured against finished runs, so a run still going at its deadline is
late too; set ``grace`` above the job's usual duration.

A job whose background run has waited in the queue past its
``queue_timeout`` is *stalled*: no task worker is taking its runs.

A job someone paused (``cronhooks pause``) is *paused*: its triggers are
refused on purpose, so it is neither overdue nor a problem until resumed.

A job that has never run is *pending*, not overdue: nothing tells a job
added an hour ago from one whose scheduler never called, and a new critical
job must not turn /health 503 on the deploy that adds it. A job that has run
but never succeeded is overdue for the ticks after its latest run; one that
fails at every tick is *failing* (which a critical job reports just the same).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cronsim import CronSim
from django.utils import timezone

from cronhooks.conf import conf
from cronhooks.jobs import Job, all_jobs
from cronhooks.jobs.schedule import next_tick
from cronhooks.liveness import holder_gone, queue_expired
from cronhooks.models import JobPause, JobRun
from cronhooks.pauses import open_pauses


def previous_tick(schedule: str, at: datetime) -> datetime:
    """The latest tick of ``schedule`` at or before ``at``."""
    # cronsim's reverse iteration starts strictly before the given time.
    return _tick_before(schedule, at.replace(microsecond=0) + timedelta(seconds=1))


# Ten thousand jobs share a few schedules and graces: one /health asks for
# each (schedule, second) once, and the cache forgets them as time moves on.
@lru_cache(maxsize=4096)
def _tick_before(schedule: str, after: datetime) -> datetime:
    return next(CronSim(schedule, after, reverse=True))


# The states that need someone to look.
PROBLEMS = frozenset({"stalled", "abandoned", "overdue", "failing"})


@dataclass(frozen=True)
class JobStatus:
    job: Job
    now: datetime
    # The job's cron expression in this ENVIRONMENT (or "") and whether it
    # may run, read from the settings once for all jobs.
    schedule: str
    active: bool
    last_run: JobRun | None
    last_success: JobRun | None
    last_failure: JobRun | None
    # The last run is "running" but its holder is gone (see job_statuses).
    last_run_abandoned: bool = False
    # Its open pause, when someone paused it.
    pause: JobPause | None = None

    @property
    def paused(self) -> bool:
        return self.pause is not None

    @property
    def expected(self) -> bool:
        """Whether its schedule is expected to run it: active and not paused."""
        return self.active and self.pause is None

    @property
    def next_run(self) -> datetime | None:
        if not self.expected or not self.schedule:
            return None
        return next_tick(self.schedule, self.now)

    @property
    def missed_tick(self) -> datetime | None:
        """The tick that has gone unserved past its grace, if any."""
        # Never succeeded: its ticks count from its latest failure, or from
        # the run in progress when it has not failed yet; never run: pending.
        finished = self.last_success and self.last_success.finished_at
        seen = self.last_failure or self.last_run
        if not self.expected or not self.schedule or not (finished or seen):
            return None
        tick = previous_tick(
            self.schedule, self.now - timedelta(seconds=self.job.grace)
        )
        if finished:
            return None if finished >= tick else tick
        return tick if seen is not None and seen.started_at <= tick else None

    @property
    def overdue(self) -> bool:
        return self.missed_tick is not None

    @property
    def failing(self) -> bool:
        """Its latest finished run failed (a later success clears it)."""
        failure, success = self.last_failure, self.last_success
        if failure is None:
            return False
        return success is None or failure.started_at > success.started_at

    @property
    def stalled(self) -> bool:
        """Its queued run has waited past queue_timeout for a task worker."""
        run = self.last_run
        return (
            run is not None
            and run.status == JobRun.Status.QUEUED
            and queue_expired(self.job, run, self.now)
        )

    @property
    def state(self) -> str:
        if not self.active:
            return "disabled"
        if self.paused:
            return "paused"
        if self.stalled:
            return "stalled"
        if self.last_run is not None and self.last_run.status == "queued":
            return "queued"
        if self.last_run is not None and self.last_run.status == "running":
            return "abandoned" if self.last_run_abandoned else "running"
        if self.overdue:
            return "overdue"
        if self.failing:
            return "failing"
        if not self.schedule:
            return "manual"
        if self.last_run is None:
            return "pending"
        return "ok"

    @property
    def attention(self) -> int:
        """How soon someone should look, 0 first: a critical job's problem,
        then any problem, then a run in progress, then the rest."""
        if self.critical_problem:
            return 0
        state = self.state
        if state in PROBLEMS:
            return 1
        return 2 if state in ("running", "queued") else 3

    @property
    def critical_problem(self) -> bool:
        """What turns /health 503 and `cronhooks status` non-zero."""
        # A job switched off (or all jobs), or paused, is off on purpose,
        # failing or not.
        return (
            self.expected
            and self.job.critical
            and (self.overdue or self.failing or self.stalled)
        )

    def as_dict(self) -> dict[str, Any]:
        missed = self.missed_tick
        last_run = None if self.last_run is None else run_summary(self.last_run)
        if last_run is not None and self.last_run_abandoned:
            last_run["status"] = JobRun.Status.ABANDONED
        return {
            "state": self.state,
            "critical": self.job.critical,
            "paused": None if self.pause is None else self.pause.as_dict(),
            "grace": self.job.grace,
            "next_run": _iso(self.next_run),
            "overdue": missed is not None,
            "missed_tick": _iso(missed),
            "overdue_since": _iso(
                None if missed is None else missed + timedelta(seconds=self.job.grace)
            ),
            "failing": self.failing,
            "stalled": self.stalled,
            "last_run": last_run,
            "last_success": _summary(self.last_success),
            "last_failure": _summary(self.last_failure),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def run_summary(run: JobRun) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "status": run.status,
        "source": run.source,
        "correlation_id": run.correlation_id,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_ms": run.duration_ms,
        "error": run.error or None,
    }


def _summary(run: JobRun | None) -> dict[str, Any] | None:
    return None if run is None else run_summary(run)


def job_statuses(
    jobs: Iterable[Job] | None = None, now: datetime | None = None
) -> dict[str, JobStatus]:
    """The status of each job (every valid job by default), in two queries:
    the last runs, and the open pauses.

    Plus one lock lookup per job whose last run has been "running" for longer
    than its lock TTL: a live run keeps its lock, so one that does not hold
    it any more was abandoned by a holder that died.
    """
    selected = list(all_jobs().values() if jobs is None else jobs)
    now = now or timezone.now()
    environment, enabled = conf.environment, conf.enabled
    latest = JobRun.objects.latest_runs(job.name for job in selected)
    # Every open pause, not only the selected jobs': the table holds one per
    # paused job, and a parameter-free query stays one index scan.
    pauses = open_pauses()
    statuses = {}
    for job in selected:
        runs = latest.get(job.name)
        last_run = None if runs is None else runs.last_run
        abandoned = False
        if (
            last_run is not None
            and last_run.status == JobRun.Status.RUNNING
            and last_run.started_at < now - timedelta(seconds=job.lock_ttl)
        ):
            abandoned = holder_gone(last_run)
        statuses[job.name] = JobStatus(
            job=job,
            now=now,
            schedule=job.schedule_in(environment),
            active=job.enabled and enabled,
            last_run=last_run,
            last_success=None if runs is None else runs.last_success,
            last_failure=None if runs is None else runs.last_failure,
            last_run_abandoned=abandoned,
            pause=pauses.get(job.name),
        )
    return statuses
