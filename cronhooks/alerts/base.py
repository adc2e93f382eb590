"""The alert backend interface, the alert every backend is given, and their
loading (``alert_backends``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from django.core.exceptions import ImproperlyConfigured

from cronhooks.backends import BackendHandler
from cronhooks.conf import conf
from cronhooks.jobs import Job

ENTRY_KEYS = frozenset({"BACKEND", "OPTIONS"})

AlertKind = Literal["failure", "recovery"]
HeartbeatSignal = Literal["start", "success", "fail"]


class InvalidAlertBackend(ImproperlyConfigured):
    """An ``ALERTS`` entry whose ``BACKEND`` cannot be used."""


@dataclass(frozen=True)
class Alert:
    """What happened to one run, as every channel is told it.

    Built in the thread that ran the job, from the run record, so a backend
    never needs the database. ``error`` is the run's stored error: configured
    tokens are already redacted from it.
    """

    kind: AlertKind
    job: str
    run_id: str
    status: str
    error: str
    correlation_id: str
    duration_ms: int | None
    started_at: datetime
    # Absolute under BASE_URL, else the admin path only; "" without the admin.
    admin_url: str
    environment: str = field(default_factory=lambda: conf.environment)
    # 2 and up for a background run's retries: the failure of the last one.
    attempt: int = 1
    # The run was not known to hold its job's lock to the end.
    lock_lost: bool = False

    @property
    def title(self) -> str:
        if self.kind == "recovery":
            return f"Job {self.job} recovered"
        if self.status == "timed_out":
            return f"Job {self.job} timed out"
        return f"Job {self.job} failed"

    @property
    def status_text(self) -> str:
        """The status with what else a reader must know: "failed (attempt 3)"."""
        notes = [f"attempt {self.attempt}"] if self.attempt > 1 else []
        if self.lock_lost:
            notes.append("lock lost")
        return self.status + (f" ({', '.join(notes)})" if notes else "")

    @property
    def duration(self) -> str:
        """The duration as a person reads it: "850 ms", "12.3 s", "4 min 5 s"."""
        if self.duration_ms is None:
            return "unknown"
        if self.duration_ms < 1000:
            return f"{self.duration_ms} ms"
        seconds = self.duration_ms / 1000
        if seconds < 60:
            return f"{seconds:.1f} s"
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s"


@dataclass(frozen=True)
class Heartbeat:
    """One run starting or ending, as a heartbeat backend is told it.

    Every run is told, not only failures: a monitor learns from the start and
    the end of each one when a job runs late, too long, or not at all.
    """

    signal: HeartbeatSignal
    job: Job
    run_id: str
    status: str
    correlation_id: str
    # None at the start.
    duration_ms: int | None = None
    attempt: int = 1
    # False for a failed attempt whose retry is queued.
    final: bool = True


class AlertBackend(ABC):
    """Base class of alert channels, configured in ``CRONHOOKS["ALERTS"]``.

    ``{"alias": {"BACKEND": "dotted.path.Class", "OPTIONS": {...}}}``; a job's
    ``alerts`` overrides are already merged into ``options``. ``send`` runs in
    a thread of its own with no database access; it raises on failure, and
    the caller logs it. One instance serves every run of the process (see
    ``alert_backends``), so ``send`` may run in several threads at once.
    """

    #: The OPTIONS keys this backend understands; others are a check error.
    option_names: ClassVar[frozenset[str]] = frozenset()
    #: ``send`` is given failures and recoveries.
    alerts: ClassVar[bool] = True
    #: ``beat`` is given the start and the end of every run.
    heartbeats: ClassVar[bool] = False

    def __init__(self, alias: str, options: Mapping[str, Any]) -> None:
        self.alias = alias
        self.options = dict(options)

    def __repr__(self) -> str:
        # Options hold secrets (a Slack webhook URL grants posting).
        return f"<{type(self).__name__} {self.alias!r}>"

    @property
    def enabled(self) -> bool:
        """False switches the channel off, e.g. an empty webhook URL."""
        return True

    @abstractmethod
    def send(self, alert: Alert) -> None:
        """Deliver the alert, or raise."""

    def beat(self, heartbeat: Heartbeat) -> None:
        """Tell a monitor that a run started or ended, or raise; called only
        when ``heartbeats`` is True, in a thread of its own like ``send``."""
        raise NotImplementedError(f"{type(self).__name__} sends no heartbeats.")

    def secrets(self) -> list[str]:
        """Values that must never reach a log line, an answer or a record."""
        return []

    def check_job(self, job: Job) -> list[str]:
        """Problems serving ``job``, for the system checks (cronhooks.E045)."""
        return []

    def check_configuration(self) -> list[str]:
        """Problems with the options, for the system checks."""
        unknown = sorted(map(str, set(self.options) - self.option_names))
        if unknown:
            known = ", ".join(sorted(self.option_names)) or "none"
            return [f"unknown OPTIONS {', '.join(unknown)} (known: {known})."]
        return []


class AlertBackendHandler(BackendHandler[AlertBackend]):
    """The channels of ``CRONHOOKS["ALERTS"]``; a job's own ``alerts`` options
    give it channels of its own, kept under its name."""

    def __init__(self) -> None:
        super().__init__("alert", AlertBackend, InvalidAlertBackend)

    def aliases(self) -> list[str]:
        return list(conf.alerts)

    def entry(self, alias: str) -> tuple[str, dict[str, Any]]:
        return self.parse_entry(alias, conf.alerts.get(alias))

    @staticmethod
    def parse_entry(alias: object, entry: object) -> tuple[str, dict[str, Any]]:
        """An ``ALERTS`` entry's dotted path and options, or
        ``InvalidAlertBackend``."""
        if (
            not isinstance(alias, str)
            or not isinstance(entry, Mapping)
            or set(entry) - ENTRY_KEYS
            or not isinstance(entry.get("BACKEND"), str)
            or not isinstance(entry.get("OPTIONS", {}), Mapping)
        ):
            raise InvalidAlertBackend(
                f"CRONHOOKS['ALERTS'][{alias!r}] must be a dict with a 'BACKEND' "
                "dotted path and optional 'OPTIONS' dict, and nothing else."
            )
        return entry["BACKEND"], dict(entry.get("OPTIONS", {}))

    def build(
        self, backend_class: type[AlertBackend], alias: str, options: dict[str, Any]
    ) -> AlertBackend:
        return backend_class(alias, options)


alert_backends = AlertBackendHandler()
