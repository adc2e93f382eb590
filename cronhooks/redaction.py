"""Secrets out of everything cronhooks writes: records, logs, answers, alerts.

One algorithm for all of them: every configured token and authenticator
secret (a signing secret, Vercel's CRON_SECRET), and every other secret
the caller knows of (an alert channel's webhook URL, a job's heartbeat URL),
is replaced whole by ``[redacted]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

from cronhooks.conf import conf

REDACTED = "[redacted]"
# Option values shorter than this are not taken for secrets: removing "smtp"
# or "True" would garble file paths and words in a traceback.
MIN_SECRET_LENGTH = 12
# Parameter names whose values are never stored, even on a refused trigger.
_SECRET_NAME_RE = re.compile(r"token|secret|passw|auth|key|credential", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without any configured token nor any of ``secrets``."""
    from cronhooks.authenticators import authenticator_secrets

    # Longest first, so a secret containing another (a token and its prefix,
    # a URL and the same URL without its query) is removed whole rather than
    # leaving its tail behind.
    known = {*conf.tokens, *authenticator_secrets(), *secrets} - {""}
    for secret in sorted(known, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def redact_value(value: object, secrets: Iterable[str] = ()) -> object:
    """``value`` with every string in it redacted, through dicts and lists."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {key: redact_value(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item, secrets) for item in value]
    return value


def looks_secret(name: str) -> bool:
    """Whether a parameter's name says its value is a secret."""
    return _SECRET_NAME_RE.search(name) is not None


def url_secrets(url: str) -> list[str]:
    """A secret URL as it may appear: whole, and without its query string."""
    if not url:
        return []
    return [url, urlunsplit(urlsplit(url)._replace(query="", fragment=""))]


def option_secrets(options: object) -> list[str]:
    """Every string inside a backend's options long enough to be a secret.

    For when the backend cannot say which of its options are secret (it
    failed to be built): all of them are taken to be.
    """
    return [text for text in _strings(options) if len(text) >= MIN_SECRET_LENGTH]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []
