"""The checks behind ``GET /health``: each small, cheap and safe to expose."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, router
from django.utils import timezone

from cronhooks.checks import check_tokens
from cronhooks.conf import conf
from cronhooks.exceptions import InvalidJobDefinition
from cronhooks.jobs import all_jobs, definitions
from cronhooks.locks import LockUnavailable, get_backend
from cronhooks.log import get_logger
from cronhooks.models import JobRun

logger = get_logger()


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str = "ok"


def check_database() -> CheckResult:
    alias = router.db_for_write(JobRun)
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        # The driver's message can name hosts and users: keep it in the logs.
        logger.warning("health_database_unavailable", alias=alias, exc_info=True)
        return CheckResult("database", False, "unavailable")
    return CheckResult("database", True)


def check_auth() -> CheckResult:
    # The same rules as the system checks, which only run at deploy time.
    problems = check_tokens()
    if not problems:
        return CheckResult("auth", True)
    if conf.tokens:
        return CheckResult("auth", False, "a configured token is invalid")
    return CheckResult("auth", False, "no token configured")


def check_jobs() -> CheckResult:
    broken = [
        name
        for name, job in definitions().items()
        if isinstance(job, InvalidJobDefinition)
    ]
    if broken:
        return CheckResult("jobs", False, f"misconfigured: {', '.join(broken)}")
    return CheckResult("jobs", True)


def check_locks() -> CheckResult:
    try:
        get_backend().ping()
    except ImproperlyConfigured:
        return CheckResult("locks", False, "misconfigured")
    except LockUnavailable:
        logger.warning("health_locks_unavailable", exc_info=True)
        return CheckResult("locks", False, "unavailable")
    return CheckResult("locks", True)


def lock_backend_description() -> Mapping[str, str] | None:
    """Which lock backend answers, for token holders (no credentials)."""
    try:
        return get_backend().describe()
    except ImproperlyConfigured:
        return None


CHECKS: tuple[Callable[[], CheckResult], ...] = (
    check_database,
    check_auth,
    check_jobs,
    check_locks,
)


def run_checks() -> list[CheckResult]:
    results = []
    for check in CHECKS:
        try:
            results.append(check())
        # A health endpoint must answer even when a check has a bug.
        except Exception:
            logger.exception("health_check_crashed", check=check.__name__)
            name = check.__name__.removeprefix("check_")
            results.append(CheckResult(name, False, "unknown error"))
    return results


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


def job_report() -> dict[str, dict[str, Any]]:
    """Every valid job with its last executed run, in one query."""
    jobs = all_jobs()
    latest = JobRun.objects.last_runs(jobs)
    now = timezone.now()
    report = {}
    for name, job in jobs.items():
        last = latest.get(name)
        next_run = job.next_run(now)
        report[name] = {
            "enabled": job.active,
            "runs": job.target,
            "schedule": job.schedule or None,
            "next_run": _iso(next_run),
            "last_run": None if last is None else run_summary(last),
        }
    return report
