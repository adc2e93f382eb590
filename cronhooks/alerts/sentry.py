"""Sentry Crons check-ins, through the project's own sentry-sdk client.

Each run is one check-in: ``in_progress`` when it starts, ``ok`` or ``error``
with its duration when it ends, both under an id derived from the run's, so
Sentry pairs them. The monitor is created and kept in step with the registry
by the ``monitor_config`` each check-in carries (schedule, margin, maximum
runtime), so a schedule changed in ``CRONHOOKS`` is changed in Sentry by the
next run. The project calls ``sentry_sdk.init`` as usual; this backend only
uses that client, so check-ins go wherever its events go.
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Any

import sentry_sdk
from sentry_sdk.crons import capture_checkin

from cronhooks.alerts.base import Alert, AlertBackend, Heartbeat
from cronhooks.alerts.delivery import DeliveryRefused
from cronhooks.conf import conf
from cronhooks.jobs import Job
from cronhooks.redaction import sentry_secrets

# What Sentry keeps of a monitor slug; a longer one would be cut, and two
# jobs could end up reporting to one monitor.
MAX_SLUG_LENGTH = 50
PREFIX_RE = re.compile(r"[a-z0-9_-]*")
STATUSES = {"start": "in_progress", "success": "ok", "fail": "error"}
THRESHOLDS = {
    "FAILURE_ISSUE_THRESHOLD": "failure_issue_threshold",
    "RECOVERY_THRESHOLD": "recovery_threshold",
}


def minutes(seconds: int) -> int:
    """Whole minutes, rounded up, at least 1: Sentry's unit and minimum."""
    return max(1, math.ceil(seconds / 60))


class SentryCronsBackend(AlertBackend):
    """OPTIONS: ``MONITOR_PREFIX`` (put before each job's name to make its
    monitor's slug), ``FAILURE_ISSUE_THRESHOLD`` and ``RECOVERY_THRESHOLD``
    (consecutive failed or successful check-ins before Sentry opens or
    resolves an issue)."""

    option_names = frozenset({"MONITOR_PREFIX", *THRESHOLDS})
    # Sentry opens an issue from an error check-in itself.
    alerts = False
    heartbeats = True

    @property
    def prefix(self) -> str:
        value = self.options.get("MONITOR_PREFIX", "")
        return value if isinstance(value, str) else ""

    def slug(self, job: Job) -> str:
        return self.prefix + job.name

    def monitor_config(self, job: Job) -> dict[str, Any] | None:
        """The monitor as the registry defines it in this ``ENVIRONMENT``;
        None for a job with no schedule there, whose monitor is made in Sentry."""
        if not job.schedule:
            return None
        config: dict[str, Any] = {
            "schedule": {"type": "crontab", "value": job.schedule},
            # The registry's crons are UTC.
            "timezone": "UTC",
            "checkin_margin": minutes(job.grace),
        }
        if job.timeout is not None:
            # The run is stopped at its timeout, and may take TIMEOUT_GRACE
            # more to say so: Sentry must not call it timed out first.
            config["max_runtime"] = minutes(job.timeout + conf.timeout_grace)
        for option, key in THRESHOLDS.items():
            if self.options.get(option) is not None:
                config[key] = self.options[option]
        return config

    def beat(self, heartbeat: Heartbeat) -> None:
        # A client initialised without a DSN is "active" but has nowhere to send.
        if sentry_sdk.get_client().transport is None:
            raise DeliveryRefused(
                "sentry_sdk is not initialised with a DSN in this process: "
                "call sentry_sdk.init(dsn=...) in your settings."
            )
        duration = heartbeat.duration_ms
        capture_checkin(
            monitor_slug=self.slug(heartbeat.job),
            check_in_id=uuid.UUID(heartbeat.run_id).hex,
            status=STATUSES[heartbeat.signal],
            duration=None if duration is None else duration / 1000,
            monitor_config=self.monitor_config(heartbeat.job),  # type: ignore[arg-type]
        )
        if heartbeat.signal != "start":
            # The SDK sends from a queue of its own: the end of a run is
            # delivered before the answer goes (or the task worker exits).
            sentry_sdk.flush(timeout=conf.alert_timeout)

    def send(self, alert: Alert) -> None:
        """Never called (``alerts`` is False): the error check-in is the alert."""

    def secrets(self) -> list[str]:
        return sentry_secrets()

    def check_configuration(self) -> list[str]:
        problems = super().check_configuration()
        prefix = self.options.get("MONITOR_PREFIX", "")
        if not isinstance(prefix, str) or not PREFIX_RE.fullmatch(prefix):
            problems.append(
                "MONITOR_PREFIX must be a string of lowercase letters, digits, "
                "'-' and '_' (a Sentry monitor slug)."
            )
        for option in THRESHOLDS:
            value = self.options.get(option)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                problems.append(f"{option} must be a whole number of at least 1.")
        return problems

    def check_job(self, job: Job) -> list[str]:
        slug = self.slug(job)
        if len(slug) > MAX_SLUG_LENGTH:
            return [
                f"its Sentry monitor slug {slug!r} is longer than {MAX_SLUG_LENGTH} "
                "characters, which Sentry cuts: shorten the job's name or "
                "MONITOR_PREFIX."
            ]
        return []
