"""A job's ``schedule``: one cron expression, or one per scheduler environment."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from functools import cache

from cronsim import CronSim, CronSimError

from cronhooks.exceptions import InvalidJobDefinition

# The key of the schedule that applies in every environment.
ANY_ENVIRONMENT = "*"
# An environment name is also a wrangler.toml [env.<name>] section, so it is
# kept to what every scheduler accepts: a lowercase letter, then up to 31
# lowercase letters, digits, "-" or "_".
ENVIRONMENT_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")

Invalid = Callable[[str, str], InvalidJobDefinition]


def parse_schedules(
    value: str | Mapping[object, object], invalid: Invalid
) -> dict[str, str]:
    """A cron expression for every environment, or one per environment.

    ``value``'s type is checked by ``parse_job`` (``JOB_FIELDS``).
    """
    if isinstance(value, str):
        by_environment: dict[object, object] = {ANY_ENVIRONMENT: value} if value else {}
    else:
        names = [key for key in value if not _is_environment(key)]
        if names:
            raise invalid(
                f"has a schedule for {', '.join(map(repr, names))}, which is not "
                "an environment name: a lowercase letter, then up to 31 lowercase "
                "letters, digits, '-' or '_'.",
                "cronhooks.E031",
            )
        by_environment = dict(value)
    schedules: dict[str, str] = {}
    for environment, schedule in by_environment.items():
        if not isinstance(schedule, str):
            raise invalid(
                f"has a schedule {schedule!r} that is not a string.", "cronhooks.E004"
            )
        if schedule and len(schedule.split()) != 5:
            # What Cloudflare, GitHub Actions and crontab accept; cronsim
            # would also take a sixth (seconds) field.
            raise invalid(
                f"has an invalid cron expression {schedule!r}: it needs exactly "
                "five fields (minute hour day-of-month month day-of-week).",
                "cronhooks.E008",
            )
        if schedule:
            error = _cron_error(schedule)
            if error is not None:
                raise invalid(
                    f"has an invalid cron expression {schedule!r}: {error}.",
                    "cronhooks.E008",
                )
            schedules[str(environment)] = schedule
    return schedules


def _is_environment(key: object) -> bool:
    return isinstance(key, str) and ENVIRONMENT_RE.fullmatch(key) is not None


@cache
def _cron_error(expression: str) -> str | None:
    """Why cronsim refuses ``expression``, or None; a registry of thousands
    of jobs repeats a few expressions, and each is parsed once."""
    try:
        CronSim(expression, datetime.now(timezone.utc))
    except CronSimError as error:
        return str(error)
    return None


def next_tick(schedule: str, after: datetime) -> datetime:
    """The first tick of ``schedule`` after ``after``."""
    return next(CronSim(schedule, after))
