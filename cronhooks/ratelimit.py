"""Request limits per fixed window, counted in a Django cache.

Three limits, each ``"<count>/<period>"`` in ``CRONHOOKS["RATE_LIMITS"]`` or
``None`` for none: ``PER_IP`` counts the requests without a valid token from
one client address, ``AUTH_FAILURES`` that address's failed authentications,
and ``PER_JOB`` the authenticated triggers of one job. A refused request
raises ``RateLimited``. Holders of a valid token are never limited by
address (see ``views.authentication_failure``). The address is
``clients.client_address``: a proxy's header only counts from a trusted proxy.

Windows are fixed (the counter's key holds the window's index), so a limit
of 10/m lets ten requests through per clock minute and ``Retry-After`` is
the time to the next minute. The count is atomic when the cache's ``incr``
is (Redis, Memcached); with a per-process cache (LocMemCache) each process
counts on its own.

Why not django-ratelimit, whose ``core.get_usage`` this resembles: it reads
project-wide settings (``RATELIMIT_USE_CACHE``, ``RATELIMIT_FAIL_OPEN``,
``RATELIMIT_IP_META_KEY``), so cronhooks' limits would change whenever the
project tunes its own, and ours could not be set per ``CRONHOOKS``; it
fails open only on ``socket.gaierror``, so a Redis that refuses or times
out raises into the view, where cronhooks must answer and record the
trigger; and it staggers each key's window by a hash of the key, which
makes ``Retry-After`` per job unpredictable for a scheduler. What remains
here is a counter on ``cache.add`` + ``cache.incr``, the part that fits.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import time
from dataclasses import dataclass

from django.core.cache import caches
from django.http import HttpRequest

from cronhooks.clients import client_address
from cronhooks.conf import conf
from cronhooks.exceptions import RateLimited
from cronhooks.log import get_logger

logger = get_logger()

LIMIT_NAMES = ("PER_JOB", "PER_IP", "AUTH_FAILURES")

PERIODS = {"s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60}
_LIMIT_RE = re.compile(r"([0-9]+)/([0-9]*)([smhd])")
# IP_HEADER as sent on the wire: request.headers finds no META-style
# "HTTP_X_FORWARDED_FOR", so the system check refuses one.
HEADER_NAME = re.compile(r"[A-Za-z0-9-]*")

# A counter outlives its window by this much: app servers' clocks (which pick
# the window) and the cache server's (which expires the key) may disagree.
EXPIRY_SLACK = 5


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int

    def describe(self) -> str:
        if self.seconds % PERIODS["d"] == 0:
            amount, unit = self.seconds // PERIODS["d"], "day"
        elif self.seconds % PERIODS["h"] == 0:
            amount, unit = self.seconds // PERIODS["h"], "hour"
        elif self.seconds % PERIODS["m"] == 0:
            amount, unit = self.seconds // PERIODS["m"], "minute"
        else:
            amount, unit = self.seconds, "second"
        return f"{amount} {unit}" + ("s" if amount != 1 else "")


def parse_limit(value: object) -> Limit:
    """``"10/m"`` or ``"100/5m"`` as a ``Limit``; ``ValueError`` otherwise."""
    match = _LIMIT_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not '<count>/<period>', e.g. '10/m'")
    count, multiple, unit = int(match[1]), int(match[2] or 1), match[3]
    if count < 1 or multiple < 1:
        raise ValueError(f"{value!r} allows nothing; use None to switch it off")
    return Limit(count, multiple * PERIODS[unit])


def configured_limit(name: str) -> Limit | None:
    """The limit in force for ``name``, or None when it is off.

    An unparseable limit is off rather than an error on every request: the
    system check (cronhooks.E014) reports it.
    """
    value = conf.rate_limits[name]
    if value is None:
        return None
    try:
        return parse_limit(value)
    except ValueError:
        return None


def address_bucket(address: str) -> str:
    """What one client's limits are counted under: its IPv6 /64, or its address.

    An IPv6 host is usually given a whole /64 and can pick any address in
    it, so counting single addresses would let it escape every limit. An
    IPv4-mapped address is already its IPv4 host (``clients.client_address``).
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def check_client(request: HttpRequest) -> None:
    """Count a request without a valid token against ``PER_IP``; refuse it
    over the limit, or when its address has failed authentication
    ``AUTH_FAILURES`` times in the window."""
    address = address_bucket(client_address(request))
    limit = configured_limit("PER_IP")
    if limit is not None:
        _enforce("ip", address, limit, "requests from this address")
    limit = configured_limit("AUTH_FAILURES")
    if limit is not None:
        # Only looked at here: record_auth_failure() counts.
        _enforce("auth", address, limit, "failed authentications", count=False)


def record_auth_failure(request: HttpRequest) -> None:
    """Count a failed authentication; the caller's next request may be refused."""
    limit = configured_limit("AUTH_FAILURES")
    if limit is not None:
        address = address_bucket(client_address(request))
        key = _key("auth", address, limit, time.time())
        _increment(key, limit)


def check_job(job: str) -> None:
    """Count an authenticated trigger of ``job``; refuse it over ``PER_JOB``."""
    limit = configured_limit("PER_JOB")
    if limit is not None:
        _enforce("job", job, limit, f"triggers of job {job!r}")


def _enforce(
    scope: str, ident: str, limit: Limit, what: str, *, count: bool = True
) -> None:
    # One reading of the clock picks the window and says when it ends.
    now = time.time()
    key = _key(scope, ident, limit, now)
    seen = _increment(key, limit) if count else _peek(key)
    # With count=False this request is not in `seen`: refuse it at the limit.
    allowed = limit.count if count else limit.count - 1
    if seen is None or seen <= allowed:
        return
    window_end = (now // limit.seconds + 1) * limit.seconds
    retry_after = max(1, math.ceil(window_end - now))
    raise RateLimited(
        f"More than {limit.count} {what} in {limit.describe()}; "
        f"retry in {retry_after} seconds.",
        retry_after=retry_after,
    )


def _key(scope: str, ident: str, limit: Limit, now: float) -> str:
    # Hashed: a job name from the URL may hold anything, and cache backends
    # differ in the characters and lengths a key may have (Memcached: 250).
    digest = hashlib.sha256(ident.encode()).hexdigest()
    window = int(now // limit.seconds)
    return f"cronhooks:rl:{scope}:{limit.seconds}:{digest}:{window}"


def _increment(key: str, limit: Limit) -> int | None:
    """The window's count after adding one, or None if the cache is down."""
    alias = str(conf.rate_limits["CACHE"])
    # Fail open on any error from the cache: its backend is pluggable, so its
    # exceptions are not known here (django-redis raises ConnectionInterrupted,
    # pymemcache socket errors, an unknown alias InvalidCacheBackendError).
    # Letting the request through is the lesser harm: the job's lock still
    # keeps its runs exclusive and tokens still guard it, while refusing
    # would let a cache outage stop every scheduled job. Only the cache calls
    # are inside the try, so a bug elsewhere still surfaces.
    try:
        cache = caches[alias]
        # add() is a no-op for an existing key, then incr() is atomic: two
        # processes starting the same window never both count from zero.
        cache.add(key, 0, timeout=limit.seconds + EXPIRY_SLACK)
        seen: object = cache.incr(key)
    except Exception as error:
        _unavailable(alias, error)
        return None
    # A cache told to swallow its errors (django-redis IGNORE_EXCEPTIONS)
    # answers None instead of raising.
    return seen if isinstance(seen, int) else None


def _peek(key: str) -> int | None:
    """The window's count, or None if the cache is down."""
    alias = str(conf.rate_limits["CACHE"])
    try:  # fail open, as in _increment
        seen: object = caches[alias].get(key, 0)
    except Exception as error:
        _unavailable(alias, error)
        return None
    return seen if isinstance(seen, int) else None


def _unavailable(alias: str, error: Exception) -> None:
    logger.warning(
        "rate_limit_unavailable",
        cache=alias,
        error=f"{type(error).__name__}: {error}",
        exc_info=error,
    )
