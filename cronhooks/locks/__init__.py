"""Lock backends: one run of a job at a time, across processes and machines."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from cronhooks.backends import BackendHandler
from cronhooks.conf import conf
from cronhooks.locks.base import (
    Holder,
    Lease,
    LockBackend,
    LockError,
    LockHeld,
    LockUnavailable,
)

__all__ = [
    "Holder",
    "InvalidLockBackend",
    "Lease",
    "LockBackend",
    "LockError",
    "LockHeld",
    "LockUnavailable",
    "get_backend",
    "load_backend",
    "lock_backends",
]

# CRONHOOKS["LOCKS"] is one entry, not a dict of aliases: it is this alias.
DEFAULT_ALIAS = "default"


class InvalidLockBackend(ImproperlyConfigured):
    pass


class LockBackendHandler(BackendHandler[LockBackend]):
    def __init__(self) -> None:
        super().__init__(
            "lock",
            LockBackend,
            InvalidLockBackend,
            # Backends reuse a CACHES or DATABASES entry's connection.
            reset_on=("CACHES", "DATABASES"),
        )

    def aliases(self) -> list[str]:
        return [DEFAULT_ALIAS]

    def entry(self, alias: str) -> tuple[str, dict[str, Any]]:
        return conf.lock_backend_path, conf.lock_options

    def build(
        self, backend_class: type[LockBackend], alias: str, options: dict[str, Any]
    ) -> LockBackend:
        # Documented for LockBackend: OPTIONS are keyword arguments.
        return backend_class(**options)

    def close(self, backend: LockBackend) -> None:
        backend.close()


lock_backends = LockBackendHandler()


def get_backend() -> LockBackend:
    """The lock backend of ``CRONHOOKS["LOCKS"]``, built once per process."""
    return lock_backends.get(DEFAULT_ALIAS)


def load_backend(path: str, options: dict[str, object]) -> LockBackend:
    """A new lock backend, not kept (for the system checks)."""
    return lock_backends.load(DEFAULT_ALIAS, path, options)
