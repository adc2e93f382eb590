"""The lock backend interface: one holder per job, with expiry and fencing."""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class LockError(Exception):
    """What a lock backend raises; the run path decides what it means for
    the trigger (``runs.execution``)."""


class LockHeld(LockError):
    """Another run of the job holds its lock."""

    def __init__(self, job: str, holder: Holder | None) -> None:
        message = f"Job {job!r} is already running."
        if holder is not None:
            message = (
                f"Job {job!r} is already running (run {holder.run_id}, since "
                f"{holder.since.isoformat()})."
            )
        super().__init__(message)
        self.job = job
        self.holder = holder


class LockUnavailable(LockError):
    """The lock backend could not be reached: fail closed."""


@dataclass(frozen=True)
class Holder:
    """Who holds a job's lock, for a 409 answer and for clean-up."""

    run_id: str
    since: datetime


@dataclass(frozen=True)
class Lease:
    """One grant of a job's lock.

    ``owner`` is a random secret known only to the holder: release and renewal
    succeed only with it. ``fencing_token`` grows with every grant of the job's
    lock, so a resource written by jobs can refuse a stale writer.
    """

    job: str
    run_id: str
    owner: str
    fencing_token: int
    ttl: float
    # Renewal from another thread is impossible (e.g. a database lease taken
    # inside the caller's transaction, invisible to other connections).
    renewable: bool = True


def new_owner() -> str:
    return secrets.token_hex(16)


class LockBackend(ABC):
    """Base class of lock backends, configured as ``CRONHOOKS["LOCKS"]``.

    ``{"BACKEND": "dotted.path.Class", "OPTIONS": {...}}``; ``OPTIONS`` are
    passed to ``__init__`` as keyword arguments.
    """

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"unknown options: {', '.join(sorted(options))}")

    @abstractmethod
    def acquire(self, job: str, run_id: str, ttl: float) -> Lease:
        """Grant the lock or raise ``LockHeld`` / ``LockUnavailable``."""

    @abstractmethod
    def renew(self, lease: Lease) -> bool:
        """Push the expiry ``lease.ttl`` ahead; False if the lease was lost.

        Raises ``LockUnavailable`` when the backend cannot be reached.
        """

    @abstractmethod
    def release(self, lease: Lease) -> bool:
        """Free the lock if ``lease`` still holds it; False if it did not."""

    @abstractmethod
    def holder(self, job: str) -> Holder | None:
        """The current, unexpired holder of the job's lock, if any."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ``LockUnavailable`` unless the backend answers."""

    def close(self) -> None:  # noqa: B027  (optional, not abstract)
        """Free connections the backend opened itself (settings changed)."""

    def check_configuration(self) -> list[str]:
        """Problems with the options, for the system checks."""
        return []

    def describe(self) -> Mapping[str, str]:
        """Safe facts for the health detail view (never credentials)."""
        return {"backend": type(self).__name__}
