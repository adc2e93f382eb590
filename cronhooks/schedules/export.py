"""Schedules for other schedulers, exported from the job registry.

``manage.py cronhooks schedule export --format F`` renders one environment's
schedule for a scheduler other than the Cloudflare Worker: one module per
format beside ``wrangler.py`` (``github``, ``vercel``, ``cloud_scheduler``,
``qstash``, ``crontab``), each a ``ScheduleFormat`` named in ``FORMATS`` by
dotted path. What they share lives here: which jobs are called, on which cron,
at which URL; which are left out and why; and the drift check behind
``--check FILE``.

The registry's cron expressions are in UTC (the README's job table), as
GitHub Actions and Vercel require; the formats that take a time zone are told
``UTC`` explicitly, so the scheduler's own default never applies.
"""

from __future__ import annotations

import difflib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from cronhooks.jobs import Job
from cronhooks.schedules.wrangler import backend_problem

# The zone every registry schedule is written in, by its IANA name.
TIME_ZONE = "Etc/UTC"

FORMATS = {
    "github-actions": "cronhooks.schedules.github.GitHubActions",
    "vercel": "cronhooks.schedules.vercel.Vercel",
    "cloud-scheduler": "cronhooks.schedules.cloud_scheduler.CloudScheduler",
    "cloud-scheduler-terraform": (
        "cronhooks.schedules.cloud_scheduler.CloudSchedulerTerraform"
    ),
    "qstash": "cronhooks.schedules.qstash.QStash",
    "crontab": "cronhooks.schedules.crontab.Crontab",
}

# cronsim (and Cloudflare) take L, W and # in a field; none of the schedulers
# exported to does, and they would refuse the whole file, or worse, read it
# as something else.
_EXTENSION = re.compile(r"[LW#?]")
_NAME = re.compile(r"[A-Za-z]")


class ExportError(Exception):
    """The registry cannot be exported as asked; the message says why."""


@dataclass(frozen=True)
class Call:
    """One job a scheduler calls, on one cron."""

    job: str
    cron: str
    # Under the project's URL prefix, with the job's parameter defaults made
    # explicit: "/cron/mop-recent?delta=25".
    path: str
    # base URL + path; "" for a format that calls the path on its own host.
    url: str
    # The parameter defaults in the query, typed: {"delta": 25}.
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def route(self) -> str:
        """The path without its query string."""
        return self.path.partition("?")[0]


@dataclass(frozen=True)
class Skipped:
    job: str
    reason: str


@dataclass(frozen=True)
class Schedule:
    """What a format renders: one environment's calls, and the jobs left out."""

    format: str
    environment: str
    base_url: str
    calls: tuple[Call, ...]
    skipped: tuple[Skipped, ...]

    def by_cron(self) -> dict[str, list[Call]]:
        """Cron -> its calls, crons in the order jobs declare them."""
        crons: dict[str, list[Call]] = {}
        for call in self.calls:
            crons.setdefault(call.cron, []).append(call)
        return crons

    @property
    def command(self) -> str:
        """The command that writes this export again, for its header."""
        parts = [
            "manage.py cronhooks schedule export",
            f"--format {self.format}",
            f"--environment {self.environment}",
        ]
        if self.base_url:
            parts.append(f"--base-url {self.base_url}")
        return " ".join(parts)


class ScheduleFormat(ABC):
    """A scheduler's file: rendered from a ``Schedule``, checked for drift."""

    name: ClassVar[str]
    # Vercel calls paths on the deployment it serves; the others need a URL.
    needs_base_url: ClassVar[bool] = True
    # Whether month and weekday names (JAN, MON) are understood.
    takes_names: ClassVar[bool] = True

    @abstractmethod
    def render(self, schedule: Schedule) -> str:
        """The whole file, for a new one."""

    def update(self, existing: str, schedule: Schedule) -> str:
        """``existing`` with the schedule written into it: by default, replaced."""
        return self.render(schedule)

    def in_sync(self, existing: str, schedule: Schedule) -> bool:
        return self.update(existing, schedule) == existing

    def cron_problem(self, cron: str) -> str | None:
        if _EXTENSION.search(cron):
            return "uses L, W, # or ?, which only Cloudflare's cron understands"
        if not self.takes_names and _NAME.search(cron):
            return "uses month or weekday names; write them as numbers"
        return None


def get_format(name: str) -> ScheduleFormat:
    try:
        path = FORMATS[name]
    except KeyError:
        raise ExportError(
            f"There is no export format {name!r}; choose one of {', '.join(FORMATS)}."
        ) from None
    schedule_format: ScheduleFormat = import_string(path)()
    return schedule_format


def trigger_path(job: Job) -> str:
    """Where ``job`` is triggered, under the project's URL prefix."""
    try:
        route = reverse("cronhooks:trigger", kwargs={"job": job.name})
    except NoReverseMatch:
        raise ExportError(
            "cronhooks' URLs are not included in ROOT_URLCONF, so there is no "
            "path to call (see cronhooks.W004)."
        ) from None
    _, _, query = job.worker_target.partition("?")
    return f"{route}?{query}" if query else route


def clean_base_url(base_url: str) -> str:
    """``base_url`` without its trailing slash, or ExportError saying why not.

    The Worker's own rule (``backend_problem``): the token goes with every
    call, so never to a placeholder, never over plain http off this machine.
    """
    if not base_url:
        raise ExportError(
            "No base URL: pass --base-url https://your.app or set "
            "CRONHOOKS['BASE_URL']."
        )
    problem = backend_problem(base_url)
    if problem is not None:
        raise ExportError(f"The base URL {problem}.")
    return base_url.strip().rstrip("/")


def build_schedule(
    schedule_format: ScheduleFormat,
    jobs: Iterable[Job],
    environment: str,
    base_url: str,
) -> Schedule:
    """The calls ``schedule_format`` makes in ``environment``.

    Disabled jobs and jobs with no schedule there are skipped (each with its
    reason); a cron the format cannot read is an ExportError naming each.
    """
    base = clean_base_url(base_url) if schedule_format.needs_base_url else ""
    calls: list[Call] = []
    skipped: list[Skipped] = []
    problems: list[str] = []
    for job in jobs:
        cron = job.schedule_in(environment)
        if not job.enabled:
            skipped.append(Skipped(job.name, "disabled"))
            continue
        if not cron:
            skipped.append(Skipped(job.name, f"manual: no schedule in {environment}"))
            continue
        problem = schedule_format.cron_problem(cron)
        if problem is not None:
            problems.append(f"Job {job.name!r} runs on {cron!r}, which {problem}.")
            continue
        path = trigger_path(job)
        defaults = {
            name: param.default
            for name, param in job.params.items()
            if param.default is not None
        }
        calls.append(Call(job.name, cron, path, base + path if base else "", defaults))
    if problems:
        raise ExportError(
            f"{schedule_format.name} cannot read these schedules:\n"
            + "\n".join(problems)
        )
    if not calls:
        raise ExportError(
            f"No enabled job has a schedule in {environment!r}: nothing to export."
        )
    return Schedule(
        format=schedule_format.name,
        environment=environment,
        base_url=base,
        calls=tuple(calls),
        skipped=tuple(skipped),
    )


def write(schedule_format: ScheduleFormat, schedule: Schedule, path: Path) -> bool:
    """Write the export into ``path``; False when it already said the same."""
    existing = path.read_text() if path.exists() else None
    content = (
        schedule_format.render(schedule)
        if existing is None
        else schedule_format.update(existing, schedule)
    )
    if content == existing:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return True


def drift(schedule_format: ScheduleFormat, schedule: Schedule, path: Path) -> str:
    """How ``path`` differs from the registry, as a unified diff; "" if in sync."""
    try:
        existing = path.read_text()
    except FileNotFoundError:
        raise ExportError(
            f"{path} does not exist. Write it with `{schedule.command} "
            f"--output {path}`."
        ) from None
    if schedule_format.in_sync(existing, schedule):
        return ""
    expected = schedule_format.update(existing, schedule)
    return "".join(
        difflib.unified_diff(
            existing.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            fromfile=str(path),
            tofile="the job registry",
        )
    )


def comment_lines(schedule: Schedule, prefix: str = "#") -> list[str]:
    """The header every commented format starts with, skipped jobs included."""
    lines = [
        f"{prefix} Generated by {schedule.command}",
        f"{prefix} from the Django job registry; do not edit: --check FILE fails "
        "when it drifts.",
    ]
    lines.extend(
        f"{prefix} Skipped {skip.job} ({skip.reason})." for skip in schedule.skipped
    )
    return lines
