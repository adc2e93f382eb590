"""Vercel Cron: the ``crons`` of ``vercel.json``.

Vercel calls each path on the production deployment that serves it, with GET
and ``Authorization: Bearer <CRON_SECRET>``, in UTC: cronhooks answers GET
only when its Vercel authenticator is configured (see the README). A
``vercel.json`` holds more than crons, so writing into one replaces its
``crons`` alone, and ``--check`` compares only them. JSON has no comments:
the skipped jobs are only reported on stderr.
"""

from __future__ import annotations

import json
from typing import Any

from cronhooks.schedules.export import ExportError, Schedule, ScheduleFormat


class Vercel(ScheduleFormat):
    name = "vercel"
    needs_base_url = False
    # "Cron jobs on Vercel do not support alternative expressions like MON".
    takes_names = False

    def crons(self, schedule: Schedule) -> list[dict[str, str]]:
        return [{"path": call.path, "schedule": call.cron} for call in schedule.calls]

    def render(self, schedule: Schedule) -> str:
        return self._dump({"crons": self.crons(schedule)})

    def update(self, existing: str, schedule: Schedule) -> str:
        config = self._load(existing)
        config["crons"] = self.crons(schedule)
        return self._dump(config)

    def in_sync(self, existing: str, schedule: Schedule) -> bool:
        return self._load(existing).get("crons") == self.crons(schedule)

    @staticmethod
    def _load(text: str) -> dict[str, Any]:
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise ExportError(f"vercel.json is not valid JSON: {error}.") from None
        if not isinstance(config, dict):
            raise ExportError("vercel.json is not a JSON object.")
        return config

    @staticmethod
    def _dump(config: dict[str, Any]) -> str:
        return json.dumps(config, indent=2) + "\n"
