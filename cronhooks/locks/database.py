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
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
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


class DatabaseLockBackend(LockBackend):
    def __init__(self, *, DATABASE: str = "default", **options: Any) -> None:  # noqa: N803
        super().__init__(**options)
        self.alias = DATABASE

    def check_configuration(self) -> list[str]:
        if self.alias not in connections:
            return [f"DATABASE {self.alias!r} is not in settings.DATABASES."]
        return []

    @property
    def _locks(self) -> Any:
        return JobLock.objects.using(self.alias)

    def acquire(self, job: str, run_id: str, ttl: float) -> Lease:
        owner = new_owner()
        with _reachable():
            self._locks.bulk_create([JobLock(job=job)], ignore_conflicts=True)
            granted = (
                self._locks.filter(job=job)
                .filter(Q(owner="") | Q(expires_at__lte=Now()))
                .update(
                    owner=owner,
                    run_id=run_id,
                    fence=F("fence") + 1,
                    acquired_at=Now(),
                    expires_at=_now_plus(ttl),
                )
            )
            if not granted:
                raise LockHeld(job, self.holder(job))
            fence = self._locks.filter(job=job, owner=owner).values_list(
                "fence", flat=True
            )
            fencing_token = fence.first()
        if fencing_token is None:  # expired and taken already: nothing to run
            raise LockHeld(job, self.holder(job))
        # Inside a transaction (a test's, or a caller's atomic block) the lease
        # is invisible to other connections until commit: no other thread can
        # renew it, and other triggers wait on its row instead of getting 409.
        in_transaction = connections[self.alias].in_atomic_block
        if in_transaction:
            logger.warning("lock_in_transaction", database=self.alias)
        return Lease(job, run_id, owner, fencing_token, ttl, not in_transaction)

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
