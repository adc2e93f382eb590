from __future__ import annotations

import os
from typing import Any

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
]
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

# CRONHOOKS_TEST_DATABASE=postgres runs the suite on the PostgreSQL at
# 127.0.0.1:5432 (CI does both); SQLite otherwise.
DATABASES: dict[str, Any]
if os.environ.get("CRONHOOKS_TEST_DATABASE") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "test"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
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
    },
}
