"""The checks behind ``GET /health``: each small, cheap and safe to expose."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, router

from cronhooks.auth import reads_tokens, token_problems
from cronhooks.authenticators import authenticator_backends, authenticators
from cronhooks.conf import conf
from cronhooks.exceptions import InvalidJobDefinition
from cronhooks.jobs import all_jobs, definitions
from cronhooks.locks import LockUnavailable, get_backend
from cronhooks.log import get_logger
from cronhooks.models import JobRun
from cronhooks.status import JobStatus, job_statuses
from cronhooks.targets import unresolved

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
    configured = authenticators()
    if len(configured) < len(authenticator_backends.aliases()):
        return CheckResult("auth", False, "an authenticator is misconfigured")
    if not configured:
        return CheckResult("auth", False, "no authenticator configured")
    if reads_tokens(configured):
        if not conf.tokens:
            return CheckResult("auth", False, "no token configured")
        if token_problems():
            return CheckResult("auth", False, "a configured token is invalid")
    if any(a.secret_problems() for a in configured):
        return CheckResult("auth", False, "an authenticator's secret is invalid")
    return CheckResult("auth", True)


def check_jobs() -> CheckResult:
    """Jobs that cannot run: a bad definition, or a target that does not resolve.

    Either is only fixed by a deploy, so /health is not ready until then, even
    though the other jobs keep running.
    """
    broken = [
        name
        for name, job in definitions().items()
        if isinstance(job, InvalidJobDefinition)
    ]
    problems = [f"misconfigured: {', '.join(broken)}"] if broken else []
    unavailable = unresolved()
    if unavailable:
        problems.append(f"command unavailable: {', '.join(unavailable)}")
    if problems:
        return CheckResult("jobs", False, "; ".join(problems))
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


def check_critical_jobs(
    statuses: Mapping[str, JobStatus] | None = None,
) -> CheckResult:
    """Critical jobs that are overdue, stalled in the queue, or whose last run
    failed.

    Judged from ``statuses`` when the caller has them (the detail answer reads
    every job's anyway); else only critical jobs are read, and none at all
    when there are none, so an anonymous /health stays cheap.
    """
    critical = [job for job in all_jobs().values() if job.critical]
    if not critical:
        return CheckResult("critical_jobs", True, "none declared")
    if statuses is None:
        try:
            statuses = job_statuses(critical)
        except DatabaseError:
            return CheckResult("critical_jobs", False, "run history unavailable")
    problems = [
        f"{name} {_problem(status)}"
        for name, status in statuses.items()
        if status.critical_problem
    ]
    if problems:
        return CheckResult("critical_jobs", False, ", ".join(problems))
    return CheckResult("critical_jobs", True)


def _problem(status: JobStatus) -> str:
    if status.stalled:
        return "stalled"
    return "overdue" if status.overdue else "failing"


CHECKS: tuple[Callable[[], CheckResult], ...] = (
    check_database,
    check_auth,
    check_jobs,
    check_locks,
    check_critical_jobs,
)


def run_checks(statuses: Mapping[str, JobStatus] | None = None) -> list[CheckResult]:
    """Every check; the critical jobs judged from ``statuses`` when given."""
    results = []
    for check in CHECKS:
        try:
            if check is check_critical_jobs and statuses is not None:
                results.append(check_critical_jobs(statuses))
            else:
                results.append(check())
        # A health endpoint must answer even when a check has a bug.
        except Exception:
            logger.exception("health_check_crashed", check=check.__name__)
            name = check.__name__.removeprefix("check_")
            results.append(CheckResult(name, False, "unknown error"))
    return results


def job_report(
    statuses: Mapping[str, JobStatus] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every valid job, where it stands against its schedule, in one query;
    the jobs needing attention first."""
    statuses = job_statuses() if statuses is None else statuses
    return {status.job.name: _job_entry(status) for status in _by_attention(statuses)}


def job_page(
    statuses: Mapping[str, JobStatus], page: int, per_page: int
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """One page of ``job_report``, and what the page leaves out.

    Ten thousand jobs would make /health megabytes long; a page names the
    jobs that need attention first, and the summary counts them all.
    """
    ordered = _by_attention(statuses)
    listed = ordered[(page - 1) * per_page : page * per_page]
    states = Counter(status.state for status in ordered)
    summary = {
        "total": len(ordered),
        "page": page,
        "pages": max(1, -(-len(ordered) // per_page)),
        "per_page": per_page,
        "states": dict(sorted(states.items())),
    }
    return {status.job.name: _job_entry(status) for status in listed}, summary


def _by_attention(statuses: Mapping[str, JobStatus]) -> list[JobStatus]:
    return sorted(
        statuses.values(), key=lambda status: (status.attention, status.job.name)
    )


def _job_entry(status: JobStatus) -> dict[str, Any]:
    job = status.job
    return {
        "description": job.description,
        "enabled": status.active,
        "runs": job.target,
        "schedule": status.schedule or None,
        **status.as_dict(),
    }
