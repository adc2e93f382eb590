"""The one ``CRONHOOKS`` setting: its schema, and a typed, lazy view of it.

``SETTINGS`` describes every key once (type, default, bounds, doc); the typed
accessors on ``conf`` and the type and bounds checks in ``checks.py`` both
come from it, so they cannot disagree.

Values are read on every access, never at import time, so
``override_settings(CRONHOOKS=...)`` works everywhere. Mistakes are reported
by the system checks; here a value the schema refuses falls back to the
default so that a misconfigured project still answers requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any, cast

from django.conf import settings

NoneType = type(None)


@dataclass(frozen=True)
class Setting:
    """One key of ``CRONHOOKS``, or of a dict in it (``LOCKS``, a job...)."""

    name: str
    types: tuple[type, ...]
    default: Any
    doc: str
    # Inclusive lower bound of a number; ``exclusive_minimum`` is strict.
    minimum: int | None = None
    exclusive_minimum: int | None = None
    # The keys of a dict setting (LOCKS, RATE_LIMITS), each merged over its
    # own default; empty for a dict of free keys (JOBS, ALERTS).
    fields: Mapping[str, Setting] = field(default_factory=dict)

    @property
    def type_name(self) -> str:
        """The accepted types as the README names them: "int or float"."""
        names = [_TYPE_NAMES.get(kind, kind.__name__) for kind in self.types]
        return " or ".join(names)

    @property
    def bounds(self) -> str:
        """The bounds as the README and the checks say them, or ""."""
        if self.exclusive_minimum is not None:
            return f"above {self.exclusive_minimum}"
        if self.minimum is not None:
            return f"at least {self.minimum}"
        return ""

    def has_type(self, value: object) -> bool:
        # True and False are ints to isinstance, never a count of seconds.
        if isinstance(value, bool) and bool not in self.types:
            return False
        return isinstance(value, self.types)

    def in_bounds(self, value: object) -> bool:
        """Whether a value of the right type is within the bounds."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return True
        if self.minimum is not None and value < self.minimum:
            return False
        return self.exclusive_minimum is None or value > self.exclusive_minimum

    def accepts(self, value: object) -> bool:
        return self.has_type(value) and self.in_bounds(value)

    def clean(self, value: object) -> Any:
        """``value`` if the schema accepts it, else the default; a dict
        setting is merged over its defaults key by key."""
        if not self.fields:
            return value if self.accepts(value) else self.default
        given = cast("Mapping[str, Any]", value) if self.accepts(value) else {}
        return {
            name: sub.clean(given.get(name, sub.default))
            for name, sub in self.fields.items()
        }


_TYPE_NAMES = {Mapping: "dict", NoneType: "None"}


def _dict_setting(name: str, doc: str, *fields: Setting) -> Setting:
    keyed = {sub.name: sub for sub in fields}
    default = {sub.name: sub.default for sub in fields}
    return Setting(name, (Mapping,), default, doc, fields=keyed)


def _count(name: str, default: int, doc: str) -> Setting:
    """A whole number of bytes, characters, days or seconds: 0 or more."""
    return Setting(name, (int,), default, doc, minimum=0)


LOCKS = _dict_setting(
    "LOCKS",
    "The lock backend that keeps each job to one run at a time.",
    Setting(
        "BACKEND",
        (str,),
        "cronhooks.locks.database.DatabaseLockBackend",
        "Dotted path of a LockBackend subclass.",
    ),
    Setting("OPTIONS", (Mapping,), {}, "Keyword arguments of the backend."),
    Setting(
        "FAIL_OPEN",
        (bool,),
        False,
        "True runs a job without a lock when the backend is unreachable "
        "(flagged lock_lost) instead of refusing the trigger with 503.",
    ),
)

_LIMIT = (str, NoneType)
RATE_LIMITS = _dict_setting(
    "RATE_LIMITS",
    "Request limits per fixed window, '<count>/<s|m|h|d>' or None for none.",
    Setting(
        "CACHE",
        (str,),
        "default",
        "Which CACHES alias counts requests (Redis in production).",
    ),
    Setting("PER_JOB", _LIMIT, "10/m", "Authenticated triggers of one job."),
    Setting(
        "PER_IP",
        _LIMIT,
        "120/m",
        "Requests without a valid token from one client address (a valid "
        "token is never limited by address: Workers share addresses).",
    ),
    Setting(
        "AUTH_FAILURES",
        _LIMIT,
        "10/m",
        "Failed authentications from one client address.",
    ),
    Setting(
        "IP_HEADER",
        (str,),
        "",
        "The header a proxy of TRUSTED_PROXIES writes the client address in, "
        "e.g. 'CF-Connecting-IP'; empty reads X-Forwarded-For.",
    ),
)

SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting(
            "TOKENS",
            (list, tuple, str),
            [],
            "Bearer tokens accepted by the trigger and health views, each at "
            "least 32 characters; several may be valid at once so a token can "
            "be rotated without downtime. One token may be given as a str.",
        ),
        Setting(
            "METRICS_TOKENS",
            (list, tuple, str),
            [],
            "Bearer tokens, each at least 32 characters, that read GET "
            "/cron/metrics and nothing else: for a Prometheus that must not "
            "trigger jobs. The trigger credentials read it too.",
        ),
        Setting(
            "AUTHENTICATORS",
            (list, tuple),
            [{"BACKEND": "cronhooks.authenticators.bearer.BearerAuthenticator"}],
            "How callers prove who they are: a list of {'BACKEND': dotted path, "
            "'OPTIONS': {...}}; a request is authenticated when any of them "
            "accepts it. The default accepts the bearer tokens of TOKENS.",
        ),
        Setting(
            "ENABLED",
            (bool,),
            True,
            "The global switch: False refuses every trigger with 503.",
        ),
        Setting("JOBS", (Mapping,), {}, "Job name -> definition (see jobs)."),
        Setting(
            "ENVIRONMENT",
            (str,),
            "production",
            "Which schedule of a per-environment job applies to this deployment.",
        ),
        _count("MAX_BODY_SIZE", 16 * 1024, "Largest request body, in bytes."),
        _count(
            "OUTPUT_LIMIT",
            16 * 1024,
            "Characters of a command's stdout and stderr kept (the tail).",
        ),
        _count(
            "RETRY_AFTER",
            30,
            "Seconds a 503 asks the scheduler to wait before retrying.",
        ),
        _count(
            "RETENTION_DAYS",
            30,
            "Run records older than this many days are removed by `cronhooks prune`.",
        ),
        _count(
            "FOLD_REFUSALS",
            10,
            "Seconds during which identical refused triggers answered by one "
            "server thread are counted on one run record (its count) rather than "
            "each written as its own; 0 writes each.",
        ),
        _count(
            "IDEMPOTENCY_RETENTION",
            24 * 60 * 60,
            "Seconds an Idempotency-Key is remembered.",
        ),
        Setting(
            "HEALTH_JOBS",
            (int,),
            100,
            "Jobs per page of /health's detail, those needing attention first.",
            minimum=1,
        ),
        Setting(
            "BASE_URL",
            (str,),
            "",
            "The site's public address: alerts and status URLs are built on it.",
        ),
        Setting(
            "ALERTS",
            (Mapping,),
            {},
            "Alert channels, like CACHES: alias -> {'BACKEND': dotted path, "
            "'OPTIONS': {...}}.",
        ),
        Setting(
            "ALERT_TIMEOUT",
            (int, float),
            5,
            "Seconds a run's answer waits, at most, for alerts and heartbeats.",
            exclusive_minimum=0,
        ),
        RATE_LIMITS,
        Setting(
            "ALLOWED_NETWORKS",
            (list, tuple),
            [],
            "CIDRs the endpoints answer; a client elsewhere gets 403 whatever "
            "its credentials. Empty: every network.",
        ),
        Setting(
            "TRUSTED_PROXIES",
            (list, tuple),
            [],
            "CIDRs of the project's own proxies: only a request from one of them "
            "has its client address read from IP_HEADER.",
        ),
        Setting(
            "TASK_BACKEND",
            (str,),
            "default",
            "The alias in settings.TASKS that runs background runs.",
        ),
        Setting("TASK_QUEUE", (str,), "default", "The queue background runs go on."),
        _count(
            "TIMEOUT_GRACE",
            10,
            "Seconds a background run past its time limit has to stop once told "
            "to, before its task worker process is ended.",
        ),
        LOCKS,
    )
}

DEFAULTS: dict[str, Any] = {name: setting.default for name, setting in SETTINGS.items()}

MIN_TOKEN_LENGTH = 32


def unknown_keys(unknown: Iterable[object], known: Iterable[str]) -> str:
    """Names ``unknown`` keys for an error: "has unknown keys: comand (did you
    mean 'command'?). Valid keys: ..." so a misspelling says its fix."""
    valid = sorted(known)
    named = []
    for key in sorted(map(str, unknown)):
        close = get_close_matches(key, valid, n=1)
        named.append(f"{key} (did you mean {close[0]!r}?)" if close else key)
    return f"has unknown keys: {', '.join(named)}. Valid keys: {', '.join(valid)}."


class Settings:
    @property
    def raw(self) -> Mapping[str, Any]:
        value = getattr(settings, "CRONHOOKS", {})
        return value if isinstance(value, Mapping) else {}

    def value(self, name: str) -> Any:
        """The setting ``name`` as the schema accepts it, else its default."""
        setting = SETTINGS[name]
        return setting.clean(self.raw.get(name, setting.default))

    @property
    def tokens(self) -> tuple[str, ...]:
        value = self.value("TOKENS")
        if isinstance(value, str):
            value = [value]
        return tuple(token for token in value if isinstance(token, str) and token)

    @property
    def metrics_tokens(self) -> tuple[str, ...]:
        value = self.value("METRICS_TOKENS")
        if isinstance(value, str):
            value = [value]
        return tuple(token for token in value if isinstance(token, str) and token)

    @property
    def authenticators(self) -> list[Any]:
        return list(self.value("AUTHENTICATORS"))

    @property
    def enabled(self) -> bool:
        # Fail closed: "false" from an environment variable is not True.
        return self.raw.get("ENABLED", True) is True

    @property
    def environment(self) -> str:
        return str(self.value("ENVIRONMENT"))

    @property
    def jobs(self) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self.value("JOBS")
        return value

    @property
    def max_body_size(self) -> int:
        return int(self.value("MAX_BODY_SIZE"))

    @property
    def output_limit(self) -> int:
        return int(self.value("OUTPUT_LIMIT"))

    @property
    def locks(self) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self.value("LOCKS")
        return value

    @property
    def lock_backend_path(self) -> str:
        return str(self.locks["BACKEND"])

    @property
    def lock_options(self) -> dict[str, Any]:
        return dict(self.locks["OPTIONS"])

    @property
    def lock_fail_open(self) -> bool:
        return self.locks["FAIL_OPEN"] is True

    @property
    def retry_after(self) -> int:
        return int(self.value("RETRY_AFTER"))

    @property
    def retention_days(self) -> int:
        return int(self.value("RETENTION_DAYS"))

    @property
    def health_jobs(self) -> int:
        return int(self.value("HEALTH_JOBS"))

    @property
    def fold_refusals(self) -> int:
        return int(self.value("FOLD_REFUSALS"))

    @property
    def idempotency_retention(self) -> int:
        return int(self.value("IDEMPOTENCY_RETENTION"))

    @property
    def base_url(self) -> str:
        return str(self.value("BASE_URL")).rstrip("/")

    @property
    def alerts(self) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self.value("ALERTS")
        return value

    @property
    def alert_timeout(self) -> float:
        return float(self.value("ALERT_TIMEOUT"))

    @property
    def task_backend(self) -> str:
        return str(self.value("TASK_BACKEND"))

    @property
    def task_queue(self) -> str:
        return str(self.value("TASK_QUEUE"))

    @property
    def timeout_grace(self) -> int:
        return int(self.value("TIMEOUT_GRACE"))

    @property
    def rate_limits(self) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self.value("RATE_LIMITS")
        return value


conf = Settings()
