"""A valid job, as the run path uses it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode

from django.utils.module_loading import import_string

from cronhooks.conf import conf
from cronhooks.exceptions import InvalidParameters
from cronhooks.jobs.params import Param
from cronhooks.jobs.schedule import ANY_ENVIRONMENT, next_tick

DEFAULT_LOCK_TTL = 3600
DEFAULT_GRACE = 15 * 60
DEFAULT_RETRY_DELAY = 60
DEFAULT_QUEUE_TIMEOUT = 60 * 60


@dataclass(frozen=True)
class Job:
    name: str
    command: str = ""
    callable: str = ""
    args: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Param] = field(default_factory=dict)
    # Environment name (or ANY_ENVIRONMENT) -> cron expression, in UTC.
    schedules: Mapping[str, str] = field(default_factory=dict)
    lock_ttl: int = DEFAULT_LOCK_TTL
    enabled: bool = True
    description: str = ""
    grace: int = DEFAULT_GRACE
    critical: bool = False
    # Alert alias -> option overrides; None sends no alerts for this job.
    # Out of the repr, as a webhook or heartbeat URL is a secret.
    alerts: Mapping[str, Mapping[str, Any]] | None = field(
        default_factory=dict, repr=False
    )
    heartbeat_url: str = field(default="", repr=False)
    background: bool = False
    timeout: int | None = None
    retries: int = 0
    retry_delay: int = DEFAULT_RETRY_DELAY
    queue_timeout: int = DEFAULT_QUEUE_TIMEOUT

    @property
    def target(self) -> str:
        """What the job runs, as a person would type it."""
        if self.callable:
            return self.callable
        return " ".join([self.command, *self.args])

    def clean_params(self, raw: Mapping[str, object]) -> dict[str, Any]:
        """Validate caller parameters, or raise ``InvalidParameters`` naming each."""
        errors: dict[str, str] = {}
        cleaned: dict[str, Any] = {}
        for name in raw:
            if name not in self.params:
                errors[name] = "unknown parameter"
        for name, param in self.params.items():
            if name in raw:
                try:
                    cleaned[name] = param.clean(raw[name])
                except ValueError as error:
                    errors[name] = str(error)
            elif param.required:
                errors[name] = "is required"
            elif param.default is not None:
                cleaned[name] = param.default
        if errors:
            summary = "; ".join(f"{name}: {reason}" for name, reason in errors.items())
            raise InvalidParameters(f"Invalid parameters: {summary}.", details=errors)
        return cleaned

    def call_options(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword options for ``call_command``: fixed options plus parameters."""
        options = dict(self.options)
        for name, value in params.items():
            options[self.params[name].option] = value
        return options

    def load_callable(self) -> Callable[..., object]:
        return cast("Callable[..., object]", import_string(self.callable))

    @property
    def active(self) -> bool:
        """Whether a trigger may run it: its own switch and the global one."""
        return self.enabled and conf.enabled

    def schedule_in(self, environment: str) -> str:
        """The cron expression in ``environment``, or "" when not scheduled there."""
        return self.schedules.get(environment, self.schedules.get(ANY_ENVIRONMENT, ""))

    @property
    def schedule(self) -> str:
        """The cron expression in this deployment's ``ENVIRONMENT``."""
        return self.schedule_in(conf.environment)

    @property
    def worker_target(self) -> str:
        """The path after ``/cron/`` a scheduler calls: defaults made explicit."""
        defaults = {
            name: str(param.default).lower()
            if isinstance(param.default, bool)
            else str(param.default)
            for name, param in self.params.items()
            if param.default is not None
        }
        return f"{self.name}?{urlencode(defaults)}" if defaults else self.name

    def next_run(self, after: datetime) -> datetime | None:
        if not self.schedule:
            return None
        return next_tick(self.schedule, after)
