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


conf = Settings()
