"""Lock backends: one run of a job at a time, across processes and machines."""

from __future__ import annotations

from functools import cache

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from cronhooks.conf import conf
from cronhooks.locks.base import (
    Holder,
    Lease,
    LockBackend,
    LockHeld,
    LockUnavailable,
)

__all__ = [
    "Holder",
    "InvalidLockBackend",
    "Lease",
    "LockBackend",
    "LockHeld",
    "LockUnavailable",
    "get_backend",
]


class InvalidLockBackend(ImproperlyConfigured):
    pass


def load_backend(path: str, options: dict[str, object]) -> LockBackend:
    try:
        backend_class = import_string(path)
    except ImportError as error:
        raise InvalidLockBackend(
            f"Could not import lock backend {path!r}: {error}"
        ) from error
    if not (isinstance(backend_class, type) and issubclass(backend_class, LockBackend)):
        raise InvalidLockBackend(f"{path!r} is not a LockBackend subclass.")
    try:
        backend: LockBackend = backend_class(**options)
    except TypeError as error:
        raise InvalidLockBackend(
            f"Lock backend {path!r} does not take these OPTIONS: {error}"
        ) from error
    return backend


@cache
def get_backend() -> LockBackend:
    return load_backend(conf.lock_backend_path, conf.lock_options)


@receiver(setting_changed)
def _reset_backend(*, setting: str, **kwargs: object) -> None:
    if setting in ("CRONHOOKS", "CACHES", "DATABASES"):
        if get_backend.cache_info().currsize:
            get_backend().close()
        get_backend.cache_clear()
