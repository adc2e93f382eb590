"""Alerts and heartbeats: tell people and monitors how runs went.

Placeholder entry points called by ``runs.run_job``; the delivery is being
built (issue 5). Both must never raise and never delay a run's response
beyond ``CRONHOOKS["ALERT_TIMEOUT"]``.
"""

from __future__ import annotations

from cronhooks.jobs import Job
from cronhooks.models import JobRun


def run_started(job: Job, run: JobRun) -> None:
    """The run's record is saved and its command is about to start."""


def run_finished(job: Job, run: JobRun) -> None:
    """The run's outcome is recorded and its lock released."""
