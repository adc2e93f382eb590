"""One way to load every pluggable backend: locks, alert channels, and the
authenticators to come.

In the style of Django's ``BaseConnectionHandler`` (``CACHES``, ``DATABASES``,
``django.tasks``' ``TASKS``): each family has a handler that reads its entries
from ``CRONHOOKS``, imports and builds a backend on first use and keeps it for
the life of the process. A change of ``CRONHOOKS`` (or of another setting a
family depends on) closes and forgets them, so ``override_settings`` works.
The system checks build theirs with ``load``, uncached.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

B = TypeVar("B")

# Modules only an extra of django-cronhooks installs, and that extra: a
# backend that cannot import one says what to install, not just its name.
EXTRAS = {
    "redis": "redis",
    "django_redis": "redis",
    "django_tasks": "tasks",
    "django_tasks_db": "tasks",
    "django_tasks_rq": "rq",
    "rq": "rq",
    "google": "google",
    "jwt": "qstash",
    "sentry_sdk": "sentry",
}

_handlers: list[BackendHandler[Any]] = []


class BackendHandler(ABC, Generic[B]):
    """The backends of one family, by alias, built once per process.

    A subclass says where the family's entries are (``entry``, ``aliases``)
    and how a backend class is called (``build``).
    """

    def __init__(
        self,
        kind: str,
        base_class: type[Any],  # abstract classes are not a type[B] to mypy
        exception_class: type[ImproperlyConfigured],
        *,
        reset_on: Iterable[str] = (),
    ) -> None:
        self.kind = kind
        self.base_class = base_class
        self.exception_class = exception_class
        # CRONHOOKS holds every family's entries; some backends read more
        # (a lock backend reuses a CACHES or DATABASES entry).
        self.reset_on = frozenset({"CRONHOOKS", *reset_on})
        self._backends: dict[tuple[str, str], B] = {}
        self._lock = threading.Lock()
        _handlers.append(self)

    @abstractmethod
    def aliases(self) -> list[str]:
        """Every configured alias, valid or not."""

    @abstractmethod
    def entry(self, alias: str) -> tuple[str, dict[str, Any]]:
        """The alias's dotted path and options, or ``exception_class``."""

    @abstractmethod
    def build(self, backend_class: type[B], alias: str, options: dict[str, Any]) -> B:
        """An instance, called as the family's base class documents."""

    def close(self, backend: B) -> None:
        """Free what a backend opened itself, when it is forgotten."""

    def load(self, alias: str, path: str, options: Mapping[str, Any]) -> B:
        """A new backend from ``path`` and ``options``, not kept.

        Raises ``exception_class`` with a message fit for a system check.
        """
        try:
            backend_class = import_string(path)
        except ImportError as error:
            raise self.exception_class(self._import_error(path, error)) from error
        if not (
            isinstance(backend_class, type)
            and issubclass(backend_class, self.base_class)
        ):
            raise self.exception_class(
                f"{path!r} is not a subclass of {self.base_class.__name__}."
            )
        try:
            return self.build(backend_class, alias, dict(options))
        except TypeError as error:
            raise self.exception_class(
                f"{self.kind.capitalize()} backend {path!r} does not take these "
                f"OPTIONS: {error}"
            ) from error

    def get(
        self,
        alias: str,
        overrides: Mapping[str, Any] | None = None,
        *,
        scope: str = "",
    ) -> B:
        """The alias's backend, built on first use; ``overrides`` (a job's own
        options, say) are merged over its options, and kept under ``scope``."""
        if overrides and not scope:
            # Kept under the alias alone, it would be every job's backend.
            raise ValueError(f"Overrides of {alias!r} need a scope to be kept under.")
        key = (alias, scope)
        backend = self._backends.get(key)
        if backend is not None:
            return backend
        with self._lock:
            backend = self._backends.get(key)
            if backend is None:
                path, options = self.entry(alias)
                backend = self.load(alias, path, {**options, **(overrides or {})})
                self._backends[key] = backend
        return backend

    def reset(self) -> None:
        """Close and forget every backend built: settings changed."""
        with self._lock:
            backends, self._backends = list(self._backends.values()), {}
        for backend in backends:
            self.close(backend)

    def _import_error(self, path: str, error: ImportError) -> str:
        message = f"Could not import {self.kind} backend {path!r}: {error}"
        missing = error.name.partition(".")[0] if error.name else ""
        if isinstance(error, ModuleNotFoundError) and missing in EXTRAS:
            extra = EXTRAS[missing]
            message = (
                f"The {self.kind} backend {path!r} needs the {missing!r} package, "
                f'which is not installed: pip install "django-cronhooks[{extra}]".'
            )
        return message


@receiver(setting_changed)
def _reset_backends(*, setting: str, **kwargs: object) -> None:
    for handler in _handlers:
        if setting in handler.reset_on:
            handler.reset()
