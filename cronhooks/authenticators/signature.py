"""Signed requests: ``X-Cronhooks-Signature: t=<unix seconds>,v1=<hex>``.

``v1`` is HMAC-SHA256, with a secret shared with the caller, over
``<t>.<METHOD>.<path with query>.<raw body>``. Unlike a bearer token, a
signature that leaks (a log, a proxy) is worth nothing: it is bound to one
request, it expires ``TOLERANCE`` seconds after ``t``, and it is accepted
once, remembered in a store that every process and machine shares (the
database by default, or a cache such as Redis).

Why not a library: the scheme is Stripe's webhook signature (timestamp,
HMAC-SHA256, several ``v1`` during a rotation) applied to a request, and the
standard library's ``hmac`` is all it takes; the request-signing libraries
(http-message-signatures, RFC 9421) sign header lists a scheduler such as
curl in a crontab cannot easily produce.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import DatabaseError, IntegrityError, router, transaction
from django.http import HttpRequest

from cronhooks.authenticators.base import (
    Authenticator,
    describe_problems,
    read_body,
    secret_problems,
    usable_secrets,
)
from cronhooks.conf import MIN_TOKEN_LENGTH
from cronhooks.exceptions import AuthenticationFailed, BackendUnavailable
from cronhooks.log import get_logger

logger = get_logger()

SIGNATURE_HEADER = "X-Cronhooks-Signature"
DEFAULT_TOLERANCE = 300
# A used signature is remembered this long past its window: the clocks of
# the machine that accepted it and of the one pruning it may disagree.
EXPIRY_SLACK = 60
# Longer headers are refused unread: a few signatures during a rotation fit.
MAX_HEADER_LENGTH = 1024
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_HEX_RE = re.compile(r"[0-9a-f]{64}")
# Caches that cannot hold a replay store: each process has its own
# (LocMem), or nothing is ever kept (Dummy).
UNSHARED_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "is per process",
    "django.core.cache.backends.dummy.DummyCache": "keeps nothing",
}


def signed_message(timestamp: int, method: str, path: str, body: bytes) -> bytes:
    """What ``v1`` is the HMAC of: ``<t>.<METHOD>.<path with query>.<body>``."""
    return f"{timestamp}.{method.upper()}.{path}.".encode() + body


def sign(
    secret: str,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    timestamp: int | None = None,
) -> str:
    """The ``X-Cronhooks-Signature`` value for a request, as a caller sends it.

    ``path`` is the path with its query string (``/cron/job?delta=5``).
    """
    t = int(time.time()) if timestamp is None else timestamp
    message = signed_message(t, method, path, body)
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def parse_signature(header: str) -> tuple[int, list[str]]:
    """``t`` and every ``v1`` of a header; ``AuthenticationFailed`` if it is
    malformed. Other schemes (``v0``...) are skipped, for later versions."""
    timestamp: int | None = None
    digests: list[str] = []
    parts = header.split(",") if len(header) <= MAX_HEADER_LENGTH else []
    for part in parts:
        name, _, value = part.strip().partition("=")
        if name == "t" and timestamp is None and _TIMESTAMP_RE.fullmatch(value):
            timestamp = int(value)
        elif name == "v1" and _HEX_RE.fullmatch(value):
            digests.append(value)
        elif name in ("t", "v1"):
            timestamp, digests = None, []
            break
    if timestamp is None or not digests:
        raise AuthenticationFailed(
            f"Malformed {SIGNATURE_HEADER} header; expected "
            "'t=<unix seconds>,v1=<hex HMAC-SHA256>'."
        )
    return timestamp, digests


class ReplayStoreUnavailable(Exception):
    """The store could not say whether a signature was used: fail closed."""


class DatabaseReplayStore:
    """Used signatures as rows (``UsedSignature``), each unique."""

    def claim(self, digest: str, expires_at: float) -> bool:
        """True the first time ``digest`` is claimed, False after."""
        from cronhooks.models import UsedSignature

        alias = router.db_for_write(UsedSignature)
        expires = datetime.fromtimestamp(expires_at, tz=timezone.utc)
        try:
            # A savepoint: in a project's transaction, a duplicate must not
            # break the rest of it.
            with transaction.atomic(using=alias):
                UsedSignature.objects.using(alias).create(
                    digest=digest, expires_at=expires
                )
        except IntegrityError:
            return False
        except DatabaseError as error:
            raise ReplayStoreUnavailable from error
        return True

    def describe(self) -> str:
        return "database"


class CacheReplayStore:
    """Used signatures as keys of a shared cache (django-redis, Memcached):
    ``cache.add`` sets a key only if it is absent, atomically."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def claim(self, digest: str, expires_at: float) -> bool:
        timeout = max(1, int(expires_at - time.time()) + 1)
        try:
            added: object = caches[self.alias].add(
                f"cronhooks:signature:{digest}", 1, timeout=timeout
            )
        # Any error: the cache's backend is pluggable, so are its exceptions
        # (see ratelimit._increment). Unlike the rate limits, fail closed.
        except Exception as error:
            raise ReplayStoreUnavailable from error
        # A cache told to swallow its errors (django-redis IGNORE_EXCEPTIONS)
        # answers None: it cannot say.
        if not isinstance(added, bool):
            raise ReplayStoreUnavailable(f"cache.add answered {added!r}")
        return added

    def describe(self) -> str:
        return f"cache {self.alias!r}"


class SignatureAuthenticator(Authenticator):
    """``OPTIONS``: ``SECRETS`` (several during a rotation, each at least 32
    characters), ``TOLERANCE`` (seconds ``t`` may be from the server's clock,
    either way; 300) and ``REPLAY_CACHE`` (a ``CACHES`` alias shared by every
    process to remember used signatures in; None, the default, uses the
    database)."""

    credential = f"'{SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex>' header"

    def __init__(
        self,
        *,
        SECRETS: object = (),  # noqa: N803  (OPTIONS keys are upper case)
        TOLERANCE: object = DEFAULT_TOLERANCE,  # noqa: N803
        REPLAY_CACHE: object = None,  # noqa: N803
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._raw_secrets = SECRETS
        self._secrets = usable_secrets(SECRETS)
        self._raw_tolerance = TOLERANCE
        self.tolerance = DEFAULT_TOLERANCE
        self._tolerance_valid = (
            isinstance(TOLERANCE, int)
            and not isinstance(TOLERANCE, bool)
            and TOLERANCE > 0
        )
        if isinstance(TOLERANCE, int) and self._tolerance_valid:
            self.tolerance = TOLERANCE
        self.replay_cache = REPLAY_CACHE
        self.store: DatabaseReplayStore | CacheReplayStore = (
            CacheReplayStore(REPLAY_CACHE)
            if isinstance(REPLAY_CACHE, str)
            else DatabaseReplayStore()
        )

    def authenticate(self, request: HttpRequest) -> bool:
        header = request.headers.get(SIGNATURE_HEADER)
        if header is None:
            return False
        timestamp, digests = parse_signature(header)
        if not self._secrets:
            raise AuthenticationFailed("No signing secret is configured on the server.")
        now = time.time()
        if abs(now - timestamp) > self.tolerance:
            raise AuthenticationFailed(
                f"The signature's timestamp is more than {self.tolerance} seconds "
                "from the server's clock: sign each request, and each retry, "
                "when it is sent."
            )
        message = signed_message(
            timestamp, str(request.method), request.get_full_path(), read_body(request)
        )
        if not self._matches(message, digests):
            raise AuthenticationFailed("Invalid signature.")
        # Keyed by the message, not by a v1: a request signed with two
        # secrets during a rotation is still one request.
        key = hashlib.sha256(message).hexdigest()
        try:
            first = self.store.claim(key, timestamp + self.tolerance + EXPIRY_SLACK)
        except ReplayStoreUnavailable:
            logger.warning(
                "signature_replay_store_unavailable",
                store=self.store.describe(),
                exc_info=True,
            )
            raise BackendUnavailable(
                "The store of used signatures is unavailable."
            ) from None
        if not first:
            raise AuthenticationFailed(
                "This signature was already used: sign each request, and each "
                "retry, afresh."
            )
        return True

    def _matches(self, message: bytes, digests: list[str]) -> bool:
        # Every secret against every v1, with no early exit: the time taken
        # does not tell which secret matched.
        matched = False
        for secret in self._secrets:
            expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
            for digest in digests:
                matched |= hmac.compare_digest(expected, digest)
        return matched

    def secrets(self) -> Sequence[str]:
        return self._secrets

    def check_configuration(self) -> list[str]:
        problems = []
        if not isinstance(self._raw_secrets, list | tuple | str):
            problems.append(
                f"OPTIONS['SECRETS'] is a {type(self._raw_secrets).__name__}; it "
                "takes a list of str (or one str)."
            )
        if not self._tolerance_valid:
            problems.append(
                f"OPTIONS['TOLERANCE'] is {self._raw_tolerance!r}; it takes a whole "
                f"number of seconds above 0. Until it is fixed, {DEFAULT_TOLERANCE} "
                "applies."
            )
        cache = self.replay_cache
        if cache is not None and not isinstance(cache, str):
            problems.append(
                f"OPTIONS['REPLAY_CACHE'] is a {type(cache).__name__}; it takes a "
                "CACHES alias, or None for the database."
            )
        elif isinstance(cache, str) and cache not in settings.CACHES:
            problems.append(
                f"OPTIONS['REPLAY_CACHE'] is {cache!r}, which is not in "
                "settings.CACHES, so every signed request is refused (503)."
            )
        elif isinstance(cache, str):
            entry = settings.CACHES[cache]
            backend = (
                str(entry.get("BACKEND", "")) if isinstance(entry, Mapping) else ""
            )
            if backend in UNSHARED_CACHES:
                problems.append(
                    f"OPTIONS['REPLAY_CACHE'] is {cache!r}, whose backend "
                    f"{UNSHARED_CACHES[backend]}, so a signature could be used "
                    "again: use a cache every process shares (Redis), or None "
                    "for the database."
                )
        return problems

    def secret_problems(self) -> list[str]:
        problems = secret_problems(self._raw_secrets, min_length=MIN_TOKEN_LENGTH)
        if not self._secrets and not problems:
            return ["OPTIONS['SECRETS'] is empty, so it accepts no request."]
        return describe_problems(problems, "Signing secret", MIN_TOKEN_LENGTH)
