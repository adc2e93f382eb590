"""The embedded default: a lease row per job in the project's database.

Works across processes and machines on PostgreSQL, and across processes on
SQLite. Each step is one conditional UPDATE, atomic on both, and expiry uses
the database's clock so app servers with skewed clocks still agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.db import Error, connections
from django.db.models import DateTimeField, ExpressionWrapper, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now

from cronhooks.locks.base import (
    Holder,
    Lease,
    LockBackend,
    LockHeld,
    LockUnavailable,
    new_owner,
)
from cronhooks.log import get_logger
from cronhooks.models import JobLock

logger = get_logger()


@contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    # django.db.Error, not only DatabaseError: InterfaceError (a closed
    # connection) is an outage too.
    except Error as error:
        raise LockUnavailable("The lock database is unavailable.") from error


def _now_plus(seconds: float) -> ExpressionWrapper[CombinedExpression]:
    return ExpressionWrapper(
        Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField()
    )


# Take a free or expired lease, creating its row on first use, and return
# the new fence; no row when another holder's lease is live. The database's
# clock decides expiry, as Now() does in the ORM path.
_UPSERT = """
INSERT INTO {{table}} (job, owner, run_id, fence, acquired_at, expires_at)
{source}
ON CONFLICT (job) DO UPDATE SET
    owner = excluded.owner,
    run_id = excluded.run_id,
    fence = {{table}}.fence + 1,
    acquired_at = excluded.acquired_at,
    expires_at = excluded.expires_at
WHERE {{table}}.owner = '' OR {{table}}.expires_at <= excluded.acquired_at
RETURNING fence
"""
# On PostgreSQL a lease seen live is not even tried: ON CONFLICT DO UPDATE
# locks the row it meets even when its WHERE then refuses, so every refused
# trigger wrote a row lock and waited for the commit (a WAL flush) of the one
# refused before it: a burst's 409s went through one at a time. The live
# holder comes back instead, for the 409. A lease seen free but taken
# meanwhile gives no row, as on SQLite.
_HELD_OR_TAKEN = """
WITH held AS (
    SELECT run_id, acquired_at FROM {{table}}
    WHERE job = %s AND owner <> '' AND expires_at > STATEMENT_TIMESTAMP()
), taken AS ({upsert})
SELECT fence, NULL, NULL FROM taken
UNION ALL
SELECT NULL, run_id, acquired_at FROM held
"""
_STATEMENTS = {
    "postgresql": _HELD_OR_TAKEN.format(
        upsert=_UPSERT.format(
            source="SELECT %s, %s, %s, 1, STATEMENT_TIMESTAMP(), "
            "STATEMENT_TIMESTAMP() + make_interval(secs => %s) "
            "WHERE NOT EXISTS (SELECT FROM held)"
        )
    ),
    # Django's SQLite cursor reads %% as a literal %; the text format is the
    # one Django's Now() writes. One writer at a time: no row lock to spare,
    # and the holder is read apart.
    "sqlite": _UPSERT.format(
        source="VALUES (%s, %s, %s, 1, STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW'), "
        "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW', %s))"
    ),
}


class DatabaseLockBackend(LockBackend):
    def __init__(self, *, DATABASE: str = "default", **options: Any) -> None:  # noqa: N803
        super().__init__(**options)
        self.alias = DATABASE

    def check_configuration(self) -> list[str]:
        if self.alias not in connections:
            return [f"DATABASE {self.alias!r} is not in settings.DATABASES."]
        vendor = connections[self.alias].vendor
        if vendor not in _STATEMENTS:
            return [
                f"DATABASE {self.alias!r} is {vendor}: the database lease needs "
                "PostgreSQL or SQLite (use the Redis lock backend)."
            ]
        return []

    @property
    def _locks(self) -> Any:
        return JobLock.objects.using(self.alias)

    def acquire(self, job: str, run_id: str, ttl: float) -> Lease:
        owner = new_owner()
        with _reachable():
            fencing_token, holder = self._take(job, owner, run_id, ttl)
        if fencing_token is None:
            if holder is None:
                with _reachable():
                    holder = self.holder(job)
            raise LockHeld(job, holder)
        # Inside a transaction (a test's, or a caller's atomic block) the lease
        # is invisible to other connections until commit: no other thread can
        # renew it, and other triggers wait on its row instead of getting 409.
        in_transaction = connections[self.alias].in_atomic_block
        if in_transaction:
            logger.warning("lock_in_transaction", database=self.alias)
        return Lease(job, run_id, owner, fencing_token, ttl, not in_transaction)

    def _take(
        self, job: str, owner: str, run_id: str, ttl: float
    ) -> tuple[int | None, Holder | None]:
        """The new fence when the lease is free or expired; else the live
        holder when the statement saw it (PostgreSQL), or None.

        One statement, one round trip: the trigger path's largest cost was
        this lease's insert, update and read-back.
        """
        connection = connections[self.alias]
        statement = _STATEMENTS.get(connection.vendor)
        if statement is None:
            vendor = connection.vendor
            raise LockUnavailable(
                f"The database lease needs PostgreSQL or SQLite, not {vendor}."
            )
        table = connection.ops.quote_name(JobLock._meta.db_table)
        params: list[str | float] = [job, owner, run_id]
        if connection.vendor == "postgresql":
            params = [job, *params, ttl]  # the held CTE reads the job first
        else:
            params = [*params, f"+{ttl} seconds"]
        with connection.cursor() as cursor:
            cursor.execute(statement.format(table=table), params)
            row = cursor.fetchone()
        if row is None:
            return None, None
        if row[0] is not None:
            return int(row[0]), None
        return None, Holder(run_id=row[1], since=row[2])

    def renew(self, lease: Lease) -> bool:
        with _reachable():
            renewed = self._locks.filter(job=lease.job, owner=lease.owner).update(
                expires_at=_now_plus(lease.ttl)
            )
        return bool(renewed)

    def release(self, lease: Lease) -> bool:
        with _reachable():
            released = self._locks.filter(job=lease.job, owner=lease.owner).update(
                owner="", expires_at=None
            )
        return bool(released)

    def holder(self, job: str) -> Holder | None:
        with _reachable():
            row = (
                self._locks.filter(job=job, expires_at__gt=Now())
                .exclude(owner="")
                .values_list("run_id", "acquired_at")
                .first()
            )
        return None if row is None else Holder(run_id=row[0], since=row[1])

    def ping(self) -> None:
        with _reachable():
            self._locks.exists()

    def describe(self) -> dict[str, str]:
        return {"backend": type(self).__name__, "database": self.alias}
