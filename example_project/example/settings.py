"""Settings for the cronhooks example project.

Everything that differs between a laptop and a deployment comes from the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import django

from cronhooks.log import configure_structlog, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-example-project-only-for-local-development"
)
DEBUG = os.environ.get("DJANGO_DEBUG", "true").lower() in {"1", "true", "yes", "on"}
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"] + [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "cronhooks",
    "elections",
    "django_tasks_db",
]
# Django 5.2 has no django.tasks: the django-tasks backport stands in for it.
if django.VERSION < (6,):
    INSTALLED_APPS.append("django_tasks")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example.urls"
WSGI_APPLICATION = "example.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SQLITE_PATH", BASE_DIR / "db.sqlite3"),
        # The web server and the task worker write to this file at once: take
        # the write lock when a transaction begins (a deferred one that must
        # upgrade fails at once with "database is locked"), wait for it, and
        # let readers run beside the writer.
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
}
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL.startswith("postgres"):
    # postgres://user:password@host:port/name, parsed here so the example needs no
    # extra dependency for it.
    _url = urlsplit(DATABASE_URL)
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(_url.path.lstrip("/")),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "",
        "PORT": str(_url.port or ""),
    }

# With REDIS_URL set, the cache and the job locks use Redis (the lock backend reuses
# this cache's connection); without it, locks live in the database.
REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",  # noqa: E501
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = logging_config(level=os.environ.get("LOG_LEVEL", "INFO"))
configure_structlog()


def _comma_separated(name: str) -> list[str]:
    return [
        item.strip() for item in os.environ.get(name, "").split(",") if item.strip()
    ]


CRONHOOKS: dict[str, Any] = {
    # Comma-separated so a new token can be added before the old one is removed.
    "TOKENS": _comma_separated("CRONHOOKS_TOKEN"),
    # CIDRs, comma-separated: callers elsewhere get 403 (empty: everyone).
    "ALLOWED_NETWORKS": _comma_separated("CRONHOOKS_ALLOWED_NETWORKS"),
    # Your own proxies' CIDRs: only from them is X-Forwarded-For believed.
    "TRUSTED_PROXIES": _comma_separated("CRONHOOKS_TRUSTED_PROXIES"),
    # Which Worker environment's schedules apply to this deployment.
    "ENVIRONMENT": os.environ.get("CRONHOOKS_ENVIRONMENT", "production"),
    "ENABLED": os.environ.get("CRONHOOKS_ENABLED", "true").lower()
    in {"1", "true", "yes", "on"},
    "JOBS": {
        "ee-recent": {
            "command": "uk_create_elections_from_every_election",
            "args": ["--recently-updated"],
            "schedule": {"production": "*/5 * * * *", "staging": "*/15 * * * *"},
        },
        "parties-import": {
            "command": "parties_import_from_ec",
            "args": ["--post-to-slack"],
            "schedule": {"production": "6 2 * * *", "staging": "6 3 * * *"},
            # Minutes on real data: answered 202, run by the task worker.
            "background": True,
            "timeout": 30 * 60,
        },
        "check-current": {
            "command": "uk_create_elections_from_every_election",
            "args": ["--check-current"],
            "schedule": {
                "production": "23 23 * * *",
                "staging": "23 0 * * *",
                "development": "0 */6 * * *",
            },
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
            "schedule": {"production": "33 23 * * *", "staging": "33 0 * * *"},
        },
        "slow": {
            "command": "slow",
            "params": {"seconds": {"type": "int", "min": 0, "max": 60, "default": 1}},
            "lock_ttl": 120,
            # ?seconds=45 is stopped after 30 s and recorded timed_out.
            "timeout": 30,
        },
        # For seeing alerts end to end: ?fail=true fails (a failure alert),
        # then ?fail=false succeeds (a recovery alert).
        "demo-fail": {
            "command": "demo_job",
            "params": {"fail": {"type": "bool", "default": False}},
            "description": "Fails on request (?fail=true), to try alerts.",
            # In the background (Prefer: respond-async), a failure is tried
            # twice more before it is alerted.
            "retries": 2,
            "retry_delay": 5,
            # e.g. https://hc-ping.com/<uuid>: pinged at start, success and fail.
            "heartbeat_url": os.environ.get("DEMO_HEARTBEAT_URL", ""),
        },
    },
    # Failures, and the first success after one, are posted to Slack; without
    # SLACK_WEBHOOK_URL the channel is off.
    "ALERTS": {
        "slack": {
            "BACKEND": "cronhooks.alerts.slack.SlackAlertBackend",
            "OPTIONS": {"WEBHOOK_URL": os.environ.get("SLACK_WEBHOOK_URL", "")},
        },
    },
    # The site's public address, so alerts link to the run in the admin, e.g.
    # http://127.0.0.1:8000 with runserver.
    "BASE_URL": os.environ.get("CRONHOOKS_BASE_URL", ""),
}

# With SENTRY_DSN set, errors go to Sentry and every run is a Sentry Crons
# check-in: in_progress, then ok or error. Each job's monitor (schedule, margin,
# maximum runtime) is made and kept up to date from the jobs above; its
# environment is this deployment's.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
if SENTRY_DSN:
    import sentry_sdk

    sentry_sdk.init(dsn=SENTRY_DSN, environment=CRONHOOKS["ENVIRONMENT"])
    CRONHOOKS["ALERTS"]["sentry"] = {
        "BACKEND": "cronhooks.alerts.sentry.SentryCronsBackend",
        "OPTIONS": {"MONITOR_PREFIX": os.environ.get("SENTRY_MONITOR_PREFIX", "")},
    }

# Background runs: on this database by default (python manage.py db_worker), or
# on RQ with TASKS_BACKEND=rq and REDIS_URL (python manage.py rqworker
# --job-class django_tasks_rq.Job --with-scheduler, on as many machines as you
# like).
TASKS_BACKEND = os.environ.get("TASKS_BACKEND", "database")
TASKS: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}
if TASKS_BACKEND == "rq":
    INSTALLED_APPS.append("django_rq")
    TASKS["default"] = {"BACKEND": "django_tasks_rq.RQBackend"}
    # No RQ time limit: cronhooks stops a run at its job's "timeout" and
    # records it; RQ's own limit would kill it unrecorded.
    RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": -1}}

# With CRONHOOKS_SIGNING_SECRET set (comma-separated during a rotation), signed
# requests are accepted too: the Worker signs them when its SIGNING_SECRET is
# the same. Used signatures are remembered in the database.
SIGNING_SECRETS = [
    s.strip()
    for s in os.environ.get("CRONHOOKS_SIGNING_SECRET", "").split(",")
    if s.strip()
]
if SIGNING_SECRETS:
    CRONHOOKS["AUTHENTICATORS"] = [
        {"BACKEND": "cronhooks.authenticators.bearer.BearerAuthenticator"},
        {
            "BACKEND": "cronhooks.authenticators.signature.SignatureAuthenticator",
            "OPTIONS": {"SECRETS": SIGNING_SECRETS},
        },
    ]

if REDIS_URL:
    CRONHOOKS["LOCKS"] = {
        "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
        "OPTIONS": {"CACHE": "default"},
    }
