"""The registry the schedule exports are tested with, and rendering it.

Every format is read back by its own test module; they share these jobs: one
scheduled per environment, one with a parameter whose default the export
makes explicit, one switched off and one manual (neither is exported).
"""

from __future__ import annotations

from typing import Any

from cronhooks.jobs import all_jobs
from cronhooks.schedules.export import build_schedule, get_format

BASE = "https://app.elections.dev"
EXPORTED: dict[str, Any] = {
    "ee-recent": {
        "command": "uk_create_elections_from_every_election",
        "schedule": {"production": "*/5 * * * *", "staging": "*/15 * * * *"},
    },
    "mop-recent": {
        "command": "uk_create_elections_from_every_election",
        "params": {
            "delta": {"type": "int", "default": 25, "option": "recently_updated_delta"}
        },
        "schedule": "33 23 * * *",
    },
}
NOT_EXPORTED: dict[str, Any] = {
    "paused": {"command": "echo_params", "schedule": "1 1 * * *", "enabled": False},
    "by-hand": {"command": "echo_params"},
}


def exported_jobs(**more: Any) -> dict[str, Any]:
    """The shared jobs, with ``more`` between the exported and the others."""
    return {**EXPORTED, **more, **NOT_EXPORTED}


def rendered(name: str, environment: str = "production", base: str = BASE) -> str:
    """The registry in settings, exported in format ``name``."""
    schedule_format = get_format(name)
    return schedule_format.render(
        build_schedule(schedule_format, all_jobs().values(), environment, base)
    )
