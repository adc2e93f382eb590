"""A bare django.tasks task that does nothing: the baseline of background.py.

``benchmarks.noop_task.noop`` is served by this module's ``__getattr__`` and
built from the backend's own ``task_class``, as ``cronhooks.runs.tasks`` builds
``execute_run``, so that it works with Django's ``django.tasks`` and with the
``django_tasks`` backport alike. It runs on ``CRONHOOKS["TASK_BACKEND"]``,
which the benchmark sets for itself and passes to its worker processes.

It imports nothing of cronhooks: an RQ work horse is a fresh fork for each
job, and whatever this module imported would be counted in every bare task.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

from django.conf import settings

TASK_NAME = "noop"


def _noop() -> None:
    """Nothing at all: what is left is the engine's own cost per task."""


# Named as the module serves it, so that its module path imports the Task.
_noop.__name__ = _noop.__qualname__ = TASK_NAME


def __getattr__(name: str) -> Any:
    if name == TASK_NAME:
        return build_task()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tasks_api() -> ModuleType:
    """``django.tasks``, else the ``django_tasks`` backport."""
    for name in ("django.tasks", "django_tasks"):
        try:
            return import_module(name)
        except ImportError:
            continue
    raise RuntimeError("Neither django.tasks nor django_tasks is installed.")


def build_task() -> Any:
    alias = settings.CRONHOOKS["TASK_BACKEND"]
    return (
        tasks_api()
        .task_backends[alias]
        .task_class(
            priority=0,
            func=_noop,
            backend=alias,
            queue_name="default",
            run_after=None,
            takes_context=False,
        )
    )
