"""A real lock backend with hooks, so a test can cut a server away at one
precise moment of a run (after the lock is taken, before it is freed)."""

from __future__ import annotations

from collections.abc import Callable

from cronhooks.locks.base import Lease
from cronhooks.locks.database import DatabaseLockBackend

# What to do at each moment, set by a test and cleared after it.
HOOKS: dict[str, Callable[[], object]] = {}


class HookedDatabaseLockBackend(DatabaseLockBackend):
    def acquire(self, job: str, run_id: str, ttl: float) -> Lease:
        lease = super().acquire(job, run_id, ttl)
        if "after_acquire" in HOOKS:
            HOOKS["after_acquire"]()
        return lease

    def release(self, lease: Lease) -> bool:
        if "before_release" in HOOKS:
            HOOKS["before_release"]()
        return super().release(lease)
