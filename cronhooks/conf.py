"""A typed, lazy view of the one ``CRONHOOKS`` setting.

Values are read on every access, never at import time, so
``override_settings(CRONHOOKS=...)`` works everywhere. Type mistakes are
reported by the system checks in ``checks.py``; here a wrong type falls back
to the default so that a misconfigured project still answers requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Bearer tokens accepted by the trigger and health views. Several may be
    # valid at once so a token can be rotated without downtime.
    "TOKENS": [],
    # The global switch: False refuses every trigger with 503 (e.g. staging).
    "ENABLED": True,
    # Job name -> definition; see jobs.py for the keys of a definition.
    "JOBS": {},
    # This deployment's scheduler environment: which schedule of a job whose
    # schedule differs per environment applies here (for /health, list).
    "ENVIRONMENT": "production",
    # Largest request body accepted, in bytes.
    "MAX_BODY_SIZE": 16 * 1024,
    # How much of a command's stdout and stderr is kept (the tail), in characters.
    "OUTPUT_LIMIT": 16 * 1024,
    # Seconds a 503 asks the scheduler to wait before retrying (Retry-After).
    "RETRY_AFTER": 30,
    # Run records older than this many days are removed by `cronhooks prune`.
    "RETENTION_DAYS": 30,
    # Seconds an Idempotency-Key is remembered: a retry with the same key
    # within this time gets the first run's result instead of a second run.
    "IDEMPOTENCY_RETENTION": 24 * 60 * 60,
    # The site's public address, e.g. "https://app.example.com": alerts link
    # to the run's admin page under it. Empty: alerts give the path only.
    "BASE_URL": "",
    # Alert channels, like CACHES: alias -> {"BACKEND": dotted path,
    # "OPTIONS": {...}}. Failures and recoveries are sent to each.
    "ALERTS": {},
    # Seconds a run's response waits, at most, for alerts and heartbeats.
    "ALERT_TIMEOUT": 5,
    # Request limits per fixed window, "<count>/<s|m|h|d>" or None for none.
    "RATE_LIMITS": {
        # Which CACHES alias counts requests (Redis in production).
        "CACHE": "default",
        # Authenticated triggers of one job, from anyone.
        "PER_JOB": "10/m",
        # Requests without a valid token from one client address (a valid
        # token is never limited by address: Workers share addresses).
        "PER_IP": "120/m",
        # Failed authentications from one client address.
        "AUTH_FAILURES": "10/m",
        # The header holding the client address when behind a proxy, e.g.
        # "CF-Connecting-IP"; empty uses REMOTE_ADDR.
        "IP_HEADER": "",
    },
    # Background runs (a job's "background": True, or a request's
    # "Prefer: respond-async") are enqueued with django.tasks: which alias of
    # settings.TASKS runs them, and on which of its queues.
    "TASK_BACKEND": "default",
    "TASK_QUEUE": "default",
    # Seconds a background run past its time limit has to stop once told to,
    # before its task worker process is ended to stop it.
    "TIMEOUT_GRACE": 10,
    # The lock backend that keeps each job to one run at a time.
    "LOCKS": {
        "BACKEND": "cronhooks.locks.database.DatabaseLockBackend",
        "OPTIONS": {},
        # True runs a job without a lock when the backend is unreachable
        # (flagged lock_lost) instead of refusing the trigger with 503.
        "FAIL_OPEN": False,
    },
}

LOCK_KEYS = frozenset(DEFAULTS["LOCKS"])
RATE_LIMIT_KEYS = frozenset(DEFAULTS["RATE_LIMITS"])

MIN_TOKEN_LENGTH = 32


class Settings:
    @property
    def raw(self) -> Mapping[str, Any]:
        value = getattr(settings, "CRONHOOKS", {})
        return value if isinstance(value, Mapping) else {}

    def _get(self, key: str, expected: type | tuple[type, ...]) -> Any:
        value = self.raw.get(key, DEFAULTS[key])
        if not isinstance(value, expected) or (
            expected is int and isinstance(value, bool)
        ):
            return DEFAULTS[key]
        return value

    @property
    def tokens(self) -> tuple[str, ...]:
        value = self.raw.get("TOKENS", DEFAULTS["TOKENS"])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return ()
        return tuple(token for token in value if isinstance(token, str) and token)

    @property
    def enabled(self) -> bool:
        # Fail closed: "false" from an environment variable is not True.
        return self.raw.get("ENABLED", True) is True

    @property
    def environment(self) -> str:
        value: str = self._get("ENVIRONMENT", str)
        return value

    @property
    def jobs(self) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self._get("JOBS", Mapping)
        return value

    @property
    def max_body_size(self) -> int:
        value: int = self._get("MAX_BODY_SIZE", int)
        return value

    @property
    def output_limit(self) -> int:
        value: int = self._get("OUTPUT_LIMIT", int)
        return value

    @property
    def locks(self) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self._get("LOCKS", Mapping)
        return {**DEFAULTS["LOCKS"], **value}

    @property
    def lock_backend_path(self) -> str:
        return str(self.locks["BACKEND"])

    @property
    def lock_options(self) -> dict[str, Any]:
        options = self.locks["OPTIONS"]
        return dict(options) if isinstance(options, Mapping) else {}

    @property
    def lock_fail_open(self) -> bool:
        return self.locks["FAIL_OPEN"] is True

    @property
    def retry_after(self) -> int:
        value: int = self._get("RETRY_AFTER", int)
        return value

    @property
    def retention_days(self) -> int:
        value: int = self._get("RETENTION_DAYS", int)
        return value

    @property
    def idempotency_retention(self) -> int:
        value: int = self._get("IDEMPOTENCY_RETENTION", int)
        return value

    @property
    def base_url(self) -> str:
        value: str = self._get("BASE_URL", str)
        return value.rstrip("/")

    @property
    def alerts(self) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self._get("ALERTS", Mapping)
        return value

    @property
    def alert_timeout(self) -> float:
        value = self.raw.get("ALERT_TIMEOUT", DEFAULTS["ALERT_TIMEOUT"])
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            return float(DEFAULTS["ALERT_TIMEOUT"])
        return float(value)

    @property
    def task_backend(self) -> str:
        value: str = self._get("TASK_BACKEND", str)
        return value

    @property
    def task_queue(self) -> str:
        value: str = self._get("TASK_QUEUE", str)
        return value

    @property
    def timeout_grace(self) -> int:
        value: int = self._get("TIMEOUT_GRACE", int)
        return value

    @property
    def rate_limits(self) -> Mapping[str, Any]:
        value: Mapping[str, Any] = self._get("RATE_LIMITS", Mapping)
        return {**DEFAULTS["RATE_LIMITS"], **value}


conf = Settings()
