"""Alerts and heartbeats: tell people and monitors how runs went.

``base``: the backend interface and the ``Alert`` it is given; ``notify``:
who is told what when a run starts and ends; ``delivery``: sending in threads;
``slack``, ``email`` and ``sentry`` (Crons check-ins): the channels shipped.
"""

from __future__ import annotations

from cronhooks.alerts.base import Alert, AlertBackend, Heartbeat, InvalidAlertBackend

# Documented in the README: a project's own channel subclasses these.
__all__ = ["Alert", "AlertBackend", "Heartbeat", "InvalidAlertBackend"]
