"""The production backend: redis-py's ``Lock`` plus an atomic fencing counter.

Acquire is ``SET NX PX`` with a random owner token; release and extend are
redis-py's owner-checked Lua scripts. Acquire also increments the job's fence
counter in the same script, so fencing tokens follow the order of grants, and
a refused acquire answers with the holder's token, so a 409 costs one call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from redis import Redis
from redis.commands.core import Script
from redis.connection import parse_url
from redis.exceptions import LockError, LockNotOwnedError, RedisError
from redis.lock import Lock

from cronhooks.locks.base import (
    Holder,
    Lease,
    LockBackend,
    LockHeld,
    LockUnavailable,
    new_owner,
)


@contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except LockError:
        raise  # an answer from the server (not the owner), not an outage
    except RedisError as error:
        raise LockUnavailable("The Redis lock server is unavailable.") from error


class FencedLock(Lock):
    """A redis-py ``Lock`` whose acquire also grants the next fencing token."""

    # The fence is at least the server's clock in microseconds, so it keeps
    # growing even if the counter is lost (FLUSHDB, eviction, a restart
    # without persistence): the next grant still outranks every earlier one.
    LUA_ACQUIRE_SCRIPT = """
    if redis.call('set', KEYS[1], ARGV[1], 'nx', 'px', ARGV[2]) then
        local fence = redis.call('incr', KEYS[2])
        local now = redis.call('time')
        local clock = tonumber(now[1]) * 1000000 + tonumber(now[2])
        if fence < clock then
            redis.call('set', KEYS[2], string.format('%d', clock))
            fence = clock
        end
        return fence
    end
    return redis.call('get', KEYS[1])
    """
    lua_acquire: ClassVar[Script | None] = None

    def __init__(self, redis: Redis, name: str, fence_key: str, **kwargs: Any) -> None:
        self.fence_key = fence_key
        self.fencing_token: int | None = None
        # Refused: the holder's token, read in the same call (no second
        # round trip to say who holds it).
        self.held_by: bytes | str | None = None
        super().__init__(redis, name, **kwargs)

    def register_scripts(self) -> None:
        super().register_scripts()
        cls = type(self)
        if cls.lua_acquire is None:
            cls.lua_acquire = self.redis.register_script(cls.LUA_ACQUIRE_SCRIPT)

    def do_acquire(self, token: str) -> bool:
        assert self.lua_acquire is not None  # noqa: S101  (set in __init__)
        fence = self.lua_acquire(
            keys=[self.name, self.fence_key],
            args=[token, int(float(self.timeout or 0) * 1000)],
            client=self.redis,
        )
        # A string reply (bytes, or str with decode_responses) is the holder's.
        if not isinstance(fence, int):
            self.held_by = fence
            return False
        self.fencing_token = int(fence)
        return True


class RedisLockBackend(LockBackend):
    """Options: ``CACHE`` (a django-redis cache alias) or ``URL``; ``KEY_PREFIX``.

    With ``URL``, ``SOCKET_TIMEOUT`` (seconds, default 2) bounds how long a
    call may wait on an unreachable server before the trigger gets a 503.
    """

    def __init__(
        self,
        *,
        CACHE: str | None = None,  # noqa: N803
        URL: str | None = None,  # noqa: N803
        KEY_PREFIX: str = "cronhooks",  # noqa: N803
        SOCKET_TIMEOUT: float = 2.0,  # noqa: N803
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.cache_alias = CACHE
        self.url = URL
        self.prefix = KEY_PREFIX
        self.socket_timeout = SOCKET_TIMEOUT
        self._client: Redis | None = None

    def check_configuration(self) -> list[str]:
        if bool(self.cache_alias) == bool(self.url):
            return ["Give exactly one of OPTIONS 'CACHE' (a cache alias) or 'URL'."]
        if self.url:
            try:
                parse_url(str(self.url))  # type: ignore[no-untyped-call]
            except ValueError as error:
                return [f"URL is not a Redis URL: {error}"]
        if self.cache_alias:
            from django.conf import settings

            cache = settings.CACHES.get(self.cache_alias)
            backend = str(cache.get("BACKEND", "")) if isinstance(cache, dict) else ""
            if not backend.startswith("django_redis."):
                return [
                    f"CACHE {self.cache_alias!r} is not a django-redis cache "
                    f"(its BACKEND is {backend or 'missing'!r})."
                ]
        return []

    @property
    def client(self) -> Redis:
        if self._client is None:
            try:
                self._client = self._connect()
            # A malformed URL or a missing cache alias: a clear refusal (and
            # `manage.py check` says why), never a 500.
            except (ValueError, ImproperlyConfigured) as error:
                raise LockUnavailable(
                    "The Redis lock backend is misconfigured; run `manage.py check`."
                ) from error
        return self._client

    def _connect(self) -> Redis:
        if self.cache_alias:
            from django_redis import get_redis_connection

            client: Redis = get_redis_connection(self.cache_alias)
            return client
        return Redis.from_url(
            str(self.url),
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_timeout,
        )

    def close(self) -> None:
        # Only a client made from URL is ours; django-redis owns its own.
        if self.url and self._client is not None:
            self._client.close()
            self._client = None

    def _key(self, job: str) -> str:
        return f"{self.prefix}:lock:{job}"

    def _lock(self, lease_or_job: Lease | str, ttl: float) -> FencedLock:
        job = lease_or_job if isinstance(lease_or_job, str) else lease_or_job.job
        return FencedLock(
            self.client,
            self._key(job),
            fence_key=f"{self.prefix}:fence:{job}",
            timeout=ttl,
            blocking=False,
            # The keeper thread renews what the request thread acquired.
            thread_local=False,
        )

    @staticmethod
    def _token(owner: str, run_id: str) -> str:
        since = datetime.now(timezone.utc).isoformat()
        return json.dumps({"owner": owner, "run_id": run_id, "since": since})

    def _bound(self, lease: Lease) -> FencedLock:
        lock = self._lock(lease, lease.ttl)
        lock.local.token = lease.owner.encode()
        return lock

    def acquire(self, job: str, run_id: str, ttl: float) -> Lease:
        lock = self._lock(job, ttl)
        token = self._token(new_owner(), run_id)
        try:
            with _reachable():
                granted = lock.acquire(token=token)
        except LockUnavailable:
            # The SET may have happened and only its reply been lost: free
            # what would otherwise block the job for a whole TTL (release
            # checks the owner, so this never frees another holder's lock).
            with suppress(RedisError):
                lock.do_release(token)
            raise
        if not granted or lock.fencing_token is None:
            raise LockHeld(job, _holder(lock.held_by))
        # The whole token is the owner secret: release compares it exactly.
        return Lease(job, run_id, token, lock.fencing_token, ttl)

    def renew(self, lease: Lease) -> bool:
        try:
            with _reachable():
                self._bound(lease).extend(lease.ttl, replace_ttl=True)
        except LockNotOwnedError:
            return False
        return True

    def release(self, lease: Lease) -> bool:
        try:
            with _reachable():
                self._bound(lease).release()
        except LockNotOwnedError:
            return False
        return True

    def holder(self, job: str) -> Holder | None:
        with _reachable():
            raw = self.client.get(self._key(job))
        return _holder(raw)

    def ping(self) -> None:
        with _reachable():
            self.client.ping()

    def describe(self) -> dict[str, str]:
        where = f"cache {self.cache_alias!r}" if self.cache_alias else "URL"
        return {"backend": type(self).__name__, "connection": where}


def _holder(token: bytes | str | None) -> Holder | None:
    """Who a lock's token says holds it; None when it is free."""
    if token is None:
        return None
    try:
        data = json.loads(token)
        return Holder(data["run_id"], datetime.fromisoformat(data["since"]))
    except (ValueError, KeyError, TypeError):
        # Held by something that is not cronhooks: still held.
        return Holder("unknown", datetime.now(timezone.utc))
