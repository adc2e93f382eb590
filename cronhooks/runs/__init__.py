"""How a trigger becomes a run.

``admission``: may it run (job, switches, parameters, idempotency, one run at
a time), then inline or enqueued. ``execution``: lock, command, time limit,
record, alerts, shared by both. ``tasks``: the django.tasks entry point of
background runs. ``slots``: the one active run per job, and stale ones.
``outcome``: what HTTP and the CLI answer. ``recording``: what a record may
hold, and writing outcomes that last. ``refusals``: refused triggers in the
history, a burst of identical ones counted on one record.
"""

from __future__ import annotations

from cronhooks.runs.admission import Trigger, reject, run_job
from cronhooks.runs.outcome import Outcome

__all__ = ["Outcome", "Trigger", "reject", "run_job"]
