"""Secrets out of everything cronhooks writes: records, logs, answers, alerts.

One algorithm for all of them. Every secret cronhooks knows of is replaced
whole by ``[redacted]``: the tokens, every string the settings keep under a
name that says it is secret (a signing secret, an authenticator's keys), and
every URL of an alert channel or a heartbeat, also as ``requests`` quotes it
in an error (its path alone), and the DSN sentry-sdk was initialised with.
Then, whoever's URL it is, the credentials (``https://user:password@``) and
the query string (``?api_key=…``) of every URL in the text go too: a job's
own error names URLs cronhooks never heard of.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from urllib.parse import urlsplit, urlunsplit

from django.core.signals import setting_changed
from django.dispatch import receiver

from cronhooks.conf import conf

REDACTED = "[redacted]"
# Option values shorter than this are not taken for secrets: removing "smtp"
# or "True" would garble file paths and words in a traceback.
MIN_SECRET_LENGTH = 12
# Parameter names whose values are never stored, even on a refused trigger.
_SECRET_NAME_RE = re.compile(r"token|secret|passw|auth|key|credential", re.IGNORECASE)
# Names that look secret but hold none: a dotted path (an authenticator's
# BACKEND), or the Redis lock backend's KEY_PREFIX; removing them would hide
# which backend failed, or which keys.
_NOT_SECRET_NAMES = frozenset({"BACKEND", "KEY_PREFIX"})
# The user and password of any URL: "scheme://user:password@host".
_URL_CREDENTIALS_RE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@'\"<>]+@")
# A query string after a path, whole URL or not: requests and urllib3 quote
# only the path of a URL that failed ("Max retries exceeded with url:
# /hook?api_key=…"), and Django's request repr does the same.
_QUERY_RE = re.compile(r"(/[^\s?#'\"<>]*)\?[^\s#'\"<>)]+")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without any known secret nor any of ``secrets``, and without
    the credentials and query string of any URL in it."""
    # Longest first, so a secret containing another (a token and its prefix,
    # a URL and its path) is removed whole rather than leaving its tail behind.
    extra = set(secrets) - {""}
    ordered = (
        sorted({*known_secrets(), *extra}, key=len, reverse=True)
        if extra
        else known_secrets()
    )
    for secret in ordered:
        if secret in text:
            text = text.replace(secret, REDACTED)
    # The checks first: most text has no URL, and every log line comes here.
    if "@" in text:
        text = _URL_CREDENTIALS_RE.sub(rf"\1{REDACTED}@", text)
    if "?" in text:
        text = _QUERY_RE.sub(rf"\1?{REDACTED}", text)
    return text


@cache
def known_secrets() -> tuple[str, ...]:
    """Every secret in ``CRONHOOKS``, longest first; read once per settings
    change, as the job registry is."""
    from cronhooks.authenticators import authenticator_secrets

    raw = conf.raw
    found = {
        *conf.tokens,
        *authenticator_secrets(),
        *sentry_secrets(),
        *_named_secrets({**raw, "JOBS": None}),
    }
    urls = list(_strings(raw.get("ALERTS", {})))
    jobs = raw.get("JOBS", {})
    # Only the keys of a job that may hold a secret: walking every definition
    # whole costs a registry of 10,000 jobs 60 ms on its first trigger.
    for spec in jobs.values() if isinstance(jobs, Mapping) else ():
        if not isinstance(spec, Mapping):
            continue
        options, alerts, heartbeat = (
            spec.get("options"),
            spec.get("alerts"),
            spec.get("heartbeat_url"),
        )
        if options or alerts:
            found.update(_named_secrets([options, alerts]))
        if heartbeat or alerts:
            urls.extend(_strings([heartbeat, alerts]))
    for url in urls:
        if "://" in url:
            found.update(url_secrets(url))
    return tuple(sorted(found - {""}, key=len, reverse=True))


@receiver(setting_changed)
def _forget_secrets(*, setting: str, **kwargs: object) -> None:
    if setting == "CRONHOOKS":
        known_secrets.cache_clear()


def _named_secrets(value: object, name: str = "") -> Iterator[str]:
    """The strings held under a key whose name says it is secret; each string
    belongs to the nearest key above it."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _named_secrets(item, str(key))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _named_secrets(item, name)
    elif (
        isinstance(value, str)
        and len(value) >= MIN_SECRET_LENGTH
        and name not in _NOT_SECRET_NAMES
        and looks_secret(name)
    ):
        yield value


def sentry_secrets() -> list[str]:
    """The DSN sentry-sdk was initialised with, and its keys: they let anyone
    send events to the project. Read when ``known_secrets`` is, so
    ``sentry_sdk.init`` belongs in the settings, as Sentry documents."""
    sdk = sys.modules.get("sentry_sdk")
    if sdk is None:  # never imported, so never initialised
        return []
    client = sdk.get_client()
    dsn, parsed = client.dsn, client.parsed_dsn
    if not dsn or parsed is None:
        return []
    keys = [parsed.public_key, parsed.secret_key or ""]
    return [dsn, *(key for key in keys if len(key) >= MIN_SECRET_LENGTH)]


def redact_value(value: object, secrets: Iterable[str] = ()) -> object:
    """``value`` with every string in it redacted, through dicts and lists."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {key: redact_value(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item, secrets) for item in value]
    return value


def holds_secret(value: object) -> bool:
    """Whether ``redact_value`` would change any string in ``value``."""
    return any(redact(text) != text for text in _strings(value))


def looks_secret(name: str) -> bool:
    """Whether a parameter's name says its value is a secret."""
    return _SECRET_NAME_RE.search(name) is not None


def url_secrets(url: str) -> list[str]:
    """A secret URL as it may appear: whole, without its query string, and as
    requests quotes it in an error, its path (and query) alone when that is
    long enough to be the secret part (Slack's /services/T…/B…/…)."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:  # "https://[::1": the whole of it is all one can remove
        return [url]
    found = [url, urlunsplit(parts._replace(query="", fragment=""))]
    path = urlunsplit(parts._replace(scheme="", netloc="", fragment=""))
    found += [text for text in (path, parts.path) if len(text) >= MIN_SECRET_LENGTH]
    return list(dict.fromkeys(found))


def option_secrets(options: object) -> list[str]:
    """Every string inside a backend's options long enough to be a secret.

    For when the backend cannot say which of its options are secret (it
    failed to be built): all of them are taken to be.
    """
    return [text for text in _strings(options) if len(text) >= MIN_SECRET_LENGTH]


def _strings(value: object) -> list[str]:
    """Every string in ``value``, through dicts, lists and tuples."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []
