from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import django

SECRET_KEY = "cronhooks-tests-not-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "cronhooks",
    "elections",
    "tests.testapp",
    "django_tasks_db",
    "django_rq",
]
# Django 5.2 has no django.tasks: the django-tasks backport stands in for it.
TASKS_API = "django.tasks" if django.VERSION >= (6,) else "django_tasks"
if TASKS_API == "django_tasks":
    INSTALLED_APPS.append("django_tasks")
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

POSTGRES = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": os.environ.get("PGDATABASE", "test"),
    "USER": os.environ.get("PGUSER", "postgres"),
    "HOST": os.environ.get("PGHOST", "127.0.0.1"),
    "PORT": os.environ.get("PGPORT", "5432"),
}


def postgres(alias: str) -> dict[str, Any]:
    # A test database per alias and process: tox runs envs in parallel.
    return {**POSTGRES, "TEST": {"NAME": f"test_cronhooks_{alias}_{os.getpid()}"}}


# A file, not :memory:, so that the lock tests' worker processes share it.
SQLITE = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": "unused",
    "TEST": {
        "NAME": os.path.join(
            tempfile.gettempdir(), f"cronhooks-tests-{os.getpid()}.sqlite3"
        )
    },
}

# CRONHOOKS_TEST_DATABASE=postgres runs the suite on PostgreSQL (CI does both).
# The "postgres" alias is always there for the tests that need PostgreSQL
# whatever the default is: only those tests create its test database.
DATABASES: dict[str, Any] = {
    "default": (
        postgres("default")
        if os.environ.get("CRONHOOKS_TEST_DATABASE") == "postgres"
        else dict(SQLITE)
    ),
    "postgres": postgres("postgres"),
}
# PostgreSQL through a TCP proxy that the tests stop and start, to cut the
# run history's database away mid-run (tests/conftest.py's PostgresProxy sets
# its port). The same test database as "postgres".
DATABASES["proxied"] = {
    **POSTGRES,
    "PORT": "1",
    "TEST": {"MIRROR": "postgres"},
    "CONN_MAX_AGE": 0,
}
# Worker processes started by the lock tests connect to the parent's test
# databases, whose names the parent passes here.
for alias, name in json.loads(
    os.environ.get("CRONHOOKS_WORKER_DATABASES", "{}")
).items():
    DATABASES[alias] = {**DATABASES[alias], "NAME": name}
# A worker may keep its run history (and idempotency keys) on PostgreSQL
# while the parent's default database is SQLite.
if os.environ.get("CRONHOOKS_WORKER_STORE") == "postgres":
    DATABASES["default"] = DATABASES["postgres"]

# Django 6.1 deprecates sending mail without MAILERS (earlier versions ignore
# it); the test environment swaps each alias for the locmem backend.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}

# The tests that use Redis take its address from the redis_url fixture (a
# private server unless REDIS_URL is set); nothing listens on port 1, so a
# connection made through this default by mistake fails at once.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "redis": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        # A server a test starts counts its rate limits apart from other tests'.
        "KEY_PREFIX": os.environ.get("CRONHOOKS_TEST_CACHE_PREFIX", ""),
    },
}

# "default" runs background runs inline (most tests); "database" and "rq" are
# the real engines, run by worker processes in tests/test_task_workers.py.
TASKS: dict[str, Any] = {
    "default": {"BACKEND": f"{TASKS_API}.backends.immediate.ImmediateBackend"},
    "database": {"BACKEND": "django_tasks_db.DatabaseBackend"},
    "rq": {"BACKEND": "django_tasks_rq.RQBackend"},
}
# The RQ tests start a private redis-server and point this at it (the worker
# processes they start are told through the environment): nothing listens on
# port 1, so an RQ call made by mistake fails at once.
RQ_QUEUES = {
    "default": {
        "URL": os.environ.get("CRONHOOKS_TEST_RQ_URL", "redis://127.0.0.1:1/0"),
        "DEFAULT_TIMEOUT": -1,
    }
}

TOKEN = "test-token-0123456789abcdefghijklmnopqrstuvwxyz"  # noqa: S105

CRONHOOKS: dict[str, Any] = {
    "TOKENS": [TOKEN],
    "JOBS": {
        "ee-recent": {
            "command": "uk_create_elections_from_every_election",
            "args": ["--recently-updated"],
            "schedule": "*/5 * * * *",
        },
        "parties-import": {
            "command": "parties_import_from_ec",
            "args": ["--post-to-slack"],
            "schedule": "6 2 * * *",
        },
        "check-current": {
            "command": "uk_create_elections_from_every_election",
            "args": ["--check-current"],
            "schedule": "23 23 * * *",
        },
        "mop-recent": {
            "command": "uk_create_elections_from_every_election",
            "args": ["--recently-updated"],
            "params": {
                "delta": {
                    "type": "int",
                    "min": 1,
                    "max": 1440,
                    "default": 25,
                    "option": "recently_updated_delta",
                },
            },
            "schedule": "33 23 * * *",
        },
        "echo": {
            "command": "echo_params",
            "params": {
                "count": {"type": "int", "min": 0, "max": 10},
                "ratio": {"type": "float", "min": 0, "max": 1},
                "loud": {"type": "bool"},
                "word": {"type": "str", "max_length": 8},
                "colour": {"type": "str", "choices": ["red", "green"]},
                "spam": {"type": "int", "min": 0, "max": 1000},
            },
        },
        "boom": {"command": "boom"},
        "ping": {"callable": "tests.testapp.jobs.ping"},
        "off": {"command": "echo_params", "enabled": False},
        # For the lock tests: a job that sleeps, with a one-second lock TTL.
        "sleepy": {
            "callable": "tests.testapp.jobs.sleep_for",
            "params": {"seconds": {"type": "float", "min": 0, "max": 60}},
            "lock_ttl": 1,
        },
        # Like sleepy, with a TTL long enough to observe a dead holder's lock.
        "held": {
            "callable": "tests.testapp.jobs.sleep_for",
            "params": {"seconds": {"type": "float", "min": 0, "max": 60}},
            "lock_ttl": 5,
        },
        # Appends its own start and end to a file, for overlap checks.
        "interval": {
            "callable": "tests.testapp.jobs.record_interval",
            "params": {
                "path": {"type": "str", "max_length": 500, "required": True},
                "seconds": {"type": "float", "min": 0, "max": 5},
            },
            "lock_ttl": 5,
        },
    },
}
if "CRONHOOKS_WORKER_LOCKS" in os.environ:
    CRONHOOKS["LOCKS"] = json.loads(os.environ["CRONHOOKS_WORKER_LOCKS"])
# Task worker processes read the parent's task backend and job overrides.
if "CRONHOOKS_WORKER_SETTINGS" in os.environ:
    CRONHOOKS.update(json.loads(os.environ["CRONHOOKS_WORKER_SETTINGS"]))
# Task worker processes send Sentry check-ins to the test's stand-in ingest.
if os.environ.get("CRONHOOKS_TEST_SENTRY_DSN"):
    import sentry_sdk

    sentry_sdk.init(
        dsn=os.environ["CRONHOOKS_TEST_SENTRY_DSN"],
        default_integrations=False,
        auto_enabling_integrations=False,
    )
# Worker processes write JSON log lines, for the tests to read their context.
if os.environ.get("CRONHOOKS_WORKER_JSON_LOGS"):
    from cronhooks.log import configure_structlog, logging_config

    LOGGING = logging_config(level="INFO", stream="ext://sys.stderr")
    configure_structlog()
