"""The lock backend contract, against each real backend.

Run for the database lease on the default database (SQLite, or PostgreSQL
with CRONHOOKS_TEST_DATABASE=postgres), on PostgreSQL always, and on Redis.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any
from unittest import mock

import psycopg
import pytest
import redis
from django.db import connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cronhooks.checks import check_locks
from cronhooks.locks import (
    Holder,
    InvalidLockBackend,
    Lease,
    LockBackend,
    LockHeld,
    LockUnavailable,
    get_backend,
    load_backend,
)
from cronhooks.locks.base import new_owner
from cronhooks.locks.database import DatabaseLockBackend
from cronhooks.locks.redis import RedisLockBackend
from cronhooks.models import JobRun
from cronhooks.testing import trigger
from tests.conftest import ON_POSTGRES, JsonLines, lock_config

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backend(locks: dict[str, Any]) -> LockBackend:
    return get_backend()


def test_a_free_lock_is_granted(backend: LockBackend) -> None:
    lease = backend.acquire("job", "run-1", ttl=5)

    assert lease.job == "job"
    assert lease.run_id == "run-1"
    holder = backend.holder("job")
    assert holder is not None
    assert holder.run_id == "run-1"


def test_a_held_lock_is_refused_naming_its_holder(backend: LockBackend) -> None:
    backend.acquire("job", "run-1", ttl=5)

    with pytest.raises(LockHeld) as excinfo:
        backend.acquire("job", "run-2", ttl=5)

    holder = excinfo.value.holder
    assert holder is not None
    assert holder.run_id == "run-1"
    assert "run-1" in str(excinfo.value)


def test_locks_of_different_jobs_are_independent(backend: LockBackend) -> None:
    backend.acquire("one", "run-1", ttl=5)

    assert backend.acquire("two", "run-2", ttl=5).job == "two"


def test_a_released_lock_can_be_granted_again(backend: LockBackend) -> None:
    lease = backend.acquire("job", "run-1", ttl=5)

    assert backend.release(lease) is True
    assert backend.holder("job") is None
    assert backend.acquire("job", "run-2", ttl=5).run_id == "run-2"


def test_an_expired_lock_can_be_granted_again(backend: LockBackend) -> None:
    backend.acquire("job", "run-1", ttl=0.3)
    time.sleep(0.5)

    assert backend.holder("job") is None
    assert backend.acquire("job", "run-2", ttl=5).run_id == "run-2"


def test_expired_holder_cannot_release_new_holders_lock(backend: LockBackend) -> None:
    stale = backend.acquire("job", "run-1", ttl=0.3)
    time.sleep(0.5)
    fresh = backend.acquire("job", "run-2", ttl=5)

    assert backend.release(stale) is False
    holder = backend.holder("job")
    assert holder is not None
    assert holder.run_id == "run-2"
    assert backend.release(fresh) is True


def test_expired_holder_cannot_renew_new_holders_lock(backend: LockBackend) -> None:
    stale = backend.acquire("job", "run-1", ttl=0.3)
    time.sleep(0.5)
    backend.acquire("job", "run-2", ttl=5)

    assert backend.renew(stale) is False
    holder = backend.holder("job")
    assert holder is not None
    assert holder.run_id == "run-2"


def test_a_released_lease_cannot_be_released_or_renewed_again(
    backend: LockBackend,
) -> None:
    lease = backend.acquire("job", "run-1", ttl=5)
    backend.release(lease)

    assert backend.release(lease) is False
    assert backend.renew(lease) is False


def test_renewal_pushes_the_expiry_ahead(backend: LockBackend) -> None:
    lease = backend.acquire("job", "run-1", ttl=1.2)
    for _ in range(6):
        time.sleep(0.3)
        assert backend.renew(lease) is True

    # 1.8 s after acquiring with a 1.2 s TTL: still held thanks to renewals.
    with pytest.raises(LockHeld):
        backend.acquire("job", "run-2", ttl=5)


def test_fencing_tokens_strictly_increase_with_each_grant(
    backend: LockBackend,
) -> None:
    tokens = []
    for number in range(5):
        lease = backend.acquire("job", f"run-{number}", ttl=5)
        tokens.append(lease.fencing_token)
        backend.release(lease)
    expired = backend.acquire("job", "run-x", ttl=0.2)
    time.sleep(0.4)
    taken_over = backend.acquire("job", "run-y", ttl=5)

    tokens += [expired.fencing_token, taken_over.fencing_token]
    assert tokens == sorted(set(tokens))


def test_a_refused_acquire_does_not_advance_the_fence(
    settings: Any,
) -> None:
    # The database lease counts grants; Redis's fence also follows its clock.
    settings.CRONHOOKS = {**settings.CRONHOOKS, "LOCKS": {}}
    backend = get_backend()
    first = backend.acquire("job", "run-1", ttl=5)
    with pytest.raises(LockHeld):
        backend.acquire("job", "run-2", ttl=5)
    backend.release(first)

    assert backend.acquire("job", "run-3", ttl=5).fencing_token == (
        first.fencing_token + 1
    )


def test_redis_fences_keep_growing_when_redis_loses_its_keys(
    settings: Any, redis_url: str
) -> None:
    prefix = f"cronhooks-flush-{uuid.uuid4().hex}"
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {
            "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
            "OPTIONS": {"URL": redis_url, "KEY_PREFIX": prefix},
        },
    }
    backend = get_backend()
    first = backend.acquire("job", "run-1", ttl=5)
    backend.release(first)
    with redis.Redis.from_url(redis_url) as client:  # as FLUSHDB or eviction would
        client.delete(f"{prefix}:fence:job")

    assert backend.acquire("job", "run-2", ttl=5).fencing_token > first.fencing_token


@pytest.mark.parametrize("decoded", [False, True])
def test_a_refused_redis_lock_names_its_holder_in_one_command(
    settings: Any, redis_url: str, decoded: bool
) -> None:
    # A burst's refusals each cost the lock's own call, not one more to ask
    # who holds it; with decode_responses the holder comes back as text.
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": lock_config("redis", redis_url),
    }
    backend = get_backend()
    assert isinstance(backend, RedisLockBackend)
    backend._client = redis.Redis.from_url(redis_url, decode_responses=decoded)
    backend.acquire("job", "run-1", ttl=5)
    client = backend.client

    with (
        mock.patch.object(
            client, "execute_command", wraps=client.execute_command
        ) as sent,
        pytest.raises(LockHeld) as refused,
    ):
        backend.acquire("job", "run-2", ttl=5)

    assert [call.args[0] for call in sent.call_args_list] == ["EVALSHA"]
    assert refused.value.holder is not None
    assert refused.value.holder.run_id == "run-1"


def test_a_redis_lock_held_by_something_else_is_refused_as_held(
    settings: Any, redis_url: str
) -> None:
    config = lock_config("redis", redis_url)
    settings.CRONHOOKS = {**settings.CRONHOOKS, "LOCKS": config}
    prefix = config["OPTIONS"]["KEY_PREFIX"]  # type: ignore[index]
    with redis.Redis.from_url(redis_url) as client:
        client.set(f"{prefix}:lock:job", "not-cronhooks", px=5000)

    with pytest.raises(LockHeld) as refused:
        get_backend().acquire("job", "run-1", ttl=5)

    assert refused.value.holder is not None
    assert refused.value.holder.run_id == "unknown"


def test_ping_answers(backend: LockBackend) -> None:
    backend.ping()


def test_the_default_backend_is_the_database_lease(settings: Any) -> None:
    settings.CRONHOOKS = {
        key: value for key, value in settings.CRONHOOKS.items() if key != "LOCKS"
    }

    backend = get_backend()

    assert isinstance(backend, DatabaseLockBackend)
    assert backend.alias == "default"


@pytest.mark.parametrize(
    ("path", "options", "message"),
    [
        ("cronhooks.locks.nope.Backend", {}, "Could not import lock backend"),
        ("cronhooks.jobs.Job", {}, "is not a subclass of LockBackend"),
        (
            "cronhooks.locks.database.DatabaseLockBackend",
            {"COLOUR": "red"},
            "does not take these OPTIONS",
        ),
    ],
)
def test_a_bad_backend_is_a_clear_configuration_error(
    path: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidLockBackend, match=message):
        load_backend(path, options)


def lock_check_ids(settings: Any, locks: object) -> list[str]:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "LOCKS": locks}
    return [str(error.id) for error in check_locks()]


@pytest.mark.parametrize(
    ("locks", "expected"),
    [
        ({"BACKEND": "cronhooks.locks.nope.Backend"}, "cronhooks.E009"),
        ({"BACKEND": "cronhooks.jobs.Job"}, "cronhooks.E009"),
        ({"OPTIONS": {"COLOUR": "red"}}, "cronhooks.E009"),
        ({"OPTIONS": {"DATABASE": "nope"}}, "cronhooks.E010"),
        ({"BACKEND": "cronhooks.locks.redis.RedisLockBackend"}, "cronhooks.E010"),
        (
            {
                "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
                "OPTIONS": {"CACHE": "default"},  # LocMemCache, not django-redis
            },
            "cronhooks.E010",
        ),
        (
            {
                "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
                "OPTIONS": {"CACHE": "redis", "URL": "redis://127.0.0.1"},
            },
            "cronhooks.E010",
        ),
        ({"TIMEOUT": 5}, "cronhooks.E003"),
        ({"FAIL_OPEN": "yes"}, "cronhooks.E011"),
    ],
)
def test_lock_configuration_mistakes_are_system_check_errors(
    settings: Any, locks: object, expected: str
) -> None:
    assert lock_check_ids(settings, locks) == [expected]


@pytest.mark.parametrize(
    "locks",
    [
        {},
        {"OPTIONS": {"DATABASE": "postgres"}},
        {
            "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
            "OPTIONS": {"CACHE": "redis"},
        },
        {
            "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
            "OPTIONS": {"URL": "redis://127.0.0.1:6379/0", "KEY_PREFIX": "x"},
        },
    ],
)
def test_valid_lock_configurations_pass_the_checks(
    settings: Any, locks: object
) -> None:
    assert lock_check_ids(settings, locks) == []


def test_a_misconfigured_backend_answers_503_not_500(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "LOCKS": {"BACKEND": "nope.Nope"}}

    response = trigger(client, "ping")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "lock_unavailable"
    assert "manage.py check" in response.json()["error"]["message"]


def test_the_redis_backend_description_shows_no_credentials() -> None:
    backend = RedisLockBackend(URL="redis://:s3cret-password@redis.internal:6379/0")

    assert backend.describe() == {"backend": "RedisLockBackend", "connection": "URL"}


def test_a_malformed_redis_url_is_a_check_error_and_a_503(
    client: Client, settings: Any
) -> None:
    locks = {
        "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
        "OPTIONS": {"URL": "127.0.0.1:6379"},
    }
    assert lock_check_ids(settings, locks) == ["cronhooks.E010"]

    response = trigger(client, "ping")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "lock_unavailable"
    assert JobRun.objects.filter(reason="lock_unavailable").exists()


def test_a_missing_cache_alias_is_a_503_not_a_500(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {
            "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
            "OPTIONS": {"CACHE": "nope"},
        },
    }

    assert trigger(client, "ping").status_code == 503


def test_the_database_lease_warns_when_taken_inside_a_transaction(
    settings: Any, json_lines: JsonLines
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "LOCKS": {}}
    backend = get_backend()

    with transaction.atomic():
        lease = backend.acquire("job", "run-1", ttl=5)
        backend.release(lease)

    assert lease.renewable is False
    assert any(line["message"] == "lock_in_transaction" for line in json_lines())
    assert get_backend().acquire("job", "run-2", ttl=5).renewable is True


# A backend of the project's own, written against the base class only


class ProcessLockBackend(LockBackend):
    """One process's locks in a dict: only what the base class asks for."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.held: dict[str, Lease] = {}
        self.fence = 0

    def acquire(self, job: str, run_id: str, ttl: float) -> Lease:
        if job in self.held:
            raise LockHeld(job, self.holder(job))
        self.fence += 1
        lease = Lease(job, run_id, new_owner(), self.fence, ttl)
        self.held[job] = lease
        return lease

    def renew(self, lease: Lease) -> bool:
        return self.held.get(lease.job) == lease

    def release(self, lease: Lease) -> bool:
        return self.held.pop(lease.job, None) == lease

    def holder(self, job: str) -> Holder | None:
        lease = self.held.get(job)
        return None if lease is None else Holder(lease.run_id, timezone.now())

    def ping(self) -> None:
        pass


def test_a_backend_implementing_only_the_base_class_runs_jobs_and_passes_checks(
    client: Client, settings: Any, auth: dict[str, str]
) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {"BACKEND": f"{__name__}.ProcessLockBackend"},
    }

    response = trigger(client, "ping")

    assert response.status_code == 200
    assert response.json()["fencing_token"] == 1
    assert check_locks() == []
    # /health names it, and nothing else: the base class knows no more.
    assert client.get("/health", headers=auth).json()["locks"] == {
        "backend": "ProcessLockBackend"
    }


def test_the_database_lease_is_taken_in_one_statement(settings: Any) -> None:
    # Insert, grant and read the fence at once: no other holder can slip in
    # between, and a trigger pays one round trip for its lock.
    settings.CRONHOOKS = {**settings.CRONHOOKS, "LOCKS": lock_config("default-db")}
    backend = get_backend()

    with CaptureQueriesContext(connection) as first:
        lease = backend.acquire("ping", "run-1", ttl=5)
    with CaptureQueriesContext(connection) as refused, pytest.raises(LockHeld):
        backend.acquire("ping", "run-2", ttl=5)

    assert len(first) == 1
    assert lease.fencing_token == 1
    # The refusal says who holds it: in the same statement on PostgreSQL, read
    # apart on SQLite.
    assert len(refused) == (1 if connection.vendor == "postgresql" else 2)


@ON_POSTGRES
def test_a_refused_lease_leaves_the_lease_row_unlocked(settings: Any) -> None:
    # Else each refusal of a burst waits for the commit of the one before it.
    settings.CRONHOOKS = {**settings.CRONHOOKS, "LOCKS": lock_config("postgres-db")}
    backend = get_backend()
    backend.acquire("job", "run-1", ttl=5)

    with transaction.atomic(using="postgres"):
        with pytest.raises(LockHeld) as refused:
            backend.acquire("job", "run-2", ttl=5)
        # Still inside the refused trigger's transaction: a row lock it took
        # would be held until its end.
        params = connections["postgres"].settings_dict
        with psycopg.connect(
            host=params["HOST"],
            port=params["PORT"],
            user=params["USER"],
            dbname=params["NAME"],
        ) as other:
            locked = other.execute(
                "SELECT job FROM cronhooks_joblock WHERE job = 'job' FOR UPDATE NOWAIT"
            )
            assert locked.fetchall() == [("job",)]

    assert refused.value.holder is not None
    assert refused.value.holder.run_id == "run-1"


@ON_POSTGRES
def test_a_lease_taken_while_its_refusal_waited_names_the_new_holder(
    settings: Any,
) -> None:
    # Seen free when the statement began, taken by another before its insert:
    # the statement sees no holder, so the holder is read again.
    settings.CRONHOOKS = {**settings.CRONHOOKS, "LOCKS": lock_config("postgres-db")}
    backend = get_backend()
    taken = threading.Event()

    def take_and_commit_once_another_waits() -> None:
        try:
            with transaction.atomic(using="postgres"):
                backend.acquire("job", "run-other", ttl=60)
                taken.set()
                with connections["postgres"].cursor() as cursor:
                    deadline = time.monotonic() + 10
                    waiting = 0
                    while not waiting and time.monotonic() < deadline:
                        # Else the transaction reads its first snapshot again.
                        cursor.execute("SELECT pg_stat_clear_snapshot()")
                        cursor.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE "
                            "datname = current_database() AND wait_event_type = 'Lock'"
                        )
                        waiting = cursor.fetchone()[0]
                        time.sleep(0.01)
        finally:
            connections["postgres"].close()

    other = threading.Thread(target=take_and_commit_once_another_waits)
    other.start()
    assert taken.wait(10)
    try:
        with pytest.raises(LockHeld) as refused:
            backend.acquire("job", "run-late", ttl=5)
    finally:
        other.join()

    assert refused.value.holder is not None
    assert refused.value.holder.run_id == "run-other"


def test_the_database_lease_on_another_database_is_refused_clearly(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "LOCKS": lock_config("default-db")}
    monkeypatch.setattr(connection, "vendor", "mysql")
    backend = get_backend()

    assert backend.check_configuration() == [
        "DATABASE 'default' is mysql: the database lease needs PostgreSQL or SQLite "
        "(use the Redis lock backend)."
    ]
    with pytest.raises(LockUnavailable, match="needs PostgreSQL or SQLite, not mysql"):
        backend.acquire("ping", "run-1", ttl=5)
