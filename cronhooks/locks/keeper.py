"""Keep a lease alive while its job runs, and notice if it is lost."""

from __future__ import annotations

import threading
from types import TracebackType

import structlog
from django.db import connections

from cronhooks.locks.base import Lease, LockBackend, LockUnavailable
from cronhooks.log import get_logger

logger = get_logger()

MAX_JOIN_SECONDS = 5


class LeaseKeeper:
    """Renews ``lease`` every third of its TTL from a background thread.

    ``lost`` is set when a renewal finds the lease taken or cannot reach the
    backend: from then on the run is no longer known to be exclusive.
    """

    def __init__(self, backend: LockBackend, lease: Lease) -> None:
        self.backend = backend
        self.lease = lease
        self.interval = max(lease.ttl / 3, 0.05)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._context = structlog.contextvars.get_contextvars()
        self._thread = threading.Thread(
            target=self._run, name=f"cronhooks-lease-{lease.job}", daemon=True
        )

    def __enter__(self) -> LeaseKeeper:
        if self.lease.renewable:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            # Wait for a renewal in flight, but never hold the answer hostage
            # to a backend that hangs: the thread is a daemon.
            self._thread.join(timeout=MAX_JOIN_SECONDS)

    def _run(self) -> None:
        structlog.contextvars.bind_contextvars(**self._context)
        try:
            while not self._stop.wait(self.interval):
                self._renew()
        finally:
            # This thread's own database connection, if the backend opened one.
            connections.close_all()

    def _renew(self) -> None:
        try:
            renewed = self.backend.renew(self.lease)
        except LockUnavailable as error:
            self._flag("lock_renewal_failed", error=str(error))
            return
        if not renewed:
            self._flag("lock_lost", reason="taken by another holder or expired")

    def _flag(self, event: str, **details: str) -> None:
        if not self.lost.is_set():
            logger.error(event, fencing_token=self.lease.fencing_token, **details)
        self.lost.set()
