"""The project the benchmark suite serves under gunicorn (and sets up in-process).

Everything a run varies comes from the environment, so that every server of
one run is started with the same settings but the lock backend:

- ``BENCH_DB_NAME``: the PostgreSQL database the suite created for the run;
- ``BENCH_REDIS_URL``: the suite's private redis-server;
- ``BENCH_LOCKS``: ``database`` (the lease in the run's database) or ``redis``;
- ``BENCH_EXTRA_JOBS``: how many scheduled no-op jobs to add to the registry;
- ``BENCH_SLEEP``: seconds the ``sleep`` and ``flood`` jobs run.

Production-like where it matters to the figures: DEBUG off, persistent
database connections (as a deployment behind gunicorn would use), no rate
limits (every trigger of the latency cases must run, not be answered 429).
"""

from __future__ import annotations

import os
from typing import Any

import django

SECRET_KEY = "cronhooks-benchmarks-not-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "benchmarks.urls"
WSGI_APPLICATION = "benchmarks.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "cronhooks",
    "benchmarks",
]
if django.VERSION < (6,):
    INSTALLED_APPS.append("django_tasks")
# The middleware of a new project that an API view would go through.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

DATABASES: dict[str, Any] = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BENCH_DB_NAME", "test"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "CONN_MAX_AGE": None,
    }
}

TOKEN = "bench-token-0123456789abcdefghijklmnopqrstuvwxyz"  # noqa: S105
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0")
LOCKS = {
    "database": {"BACKEND": "cronhooks.locks.database.DatabaseLockBackend"},
    "redis": {
        "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
        "OPTIONS": {"URL": REDIS_URL, "KEY_PREFIX": "bench"},
    },
}
SLEEP = os.environ.get("BENCH_SLEEP", "2")


def jobs(extra: int) -> dict[str, dict[str, Any]]:
    """The four jobs of every run, and ``extra`` scheduled no-op jobs."""
    registry: dict[str, dict[str, Any]] = {
        # A job run every minute: 525,600 rows of history a year.
        "noop": {"command": "bench_noop", "schedule": "* * * * *"},
        "nightly": {"command": "bench_noop", "schedule": "0 3 * * *"},
        # The burst's and the flood's jobs: long enough that the triggers
        # that arrive meanwhile are refused.
        "sleep": {"command": "bench_sleep", "args": [SLEEP]},
        "flood": {"command": "bench_sleep", "args": [SLEEP]},
    }
    for number in range(extra):
        registry[f"extra-{number:05d}"] = {
            "command": "bench_noop",
            "schedule": f"{number % 60} * * * *",
        }
    return registry


def cronhooks(locks: str, extra_jobs: int = 0) -> dict[str, Any]:
    return {
        "TOKENS": [TOKEN],
        "JOBS": jobs(extra_jobs),
        "LOCKS": LOCKS[locks],
        "RATE_LIMITS": {"PER_JOB": None, "PER_IP": None, "AUTH_FAILURES": None},
    }


CRONHOOKS = cronhooks(
    os.environ.get("BENCH_LOCKS", "database"),
    int(os.environ.get("BENCH_EXTRA_JOBS", "0")),
)
