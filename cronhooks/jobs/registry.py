"""The jobs of ``CRONHOOKS["JOBS"]``, parsed once per settings change."""

from __future__ import annotations

from functools import cache

from django.core.signals import setting_changed
from django.dispatch import receiver

from cronhooks.conf import conf
from cronhooks.exceptions import InvalidJobDefinition, JobMisconfigured, UnknownJob
from cronhooks.jobs.definition import parse_job
from cronhooks.jobs.job import Job


@cache
def _parse_all() -> dict[str, Job | InvalidJobDefinition]:
    parsed: dict[str, Job | InvalidJobDefinition] = {}
    for name, spec in conf.jobs.items():
        try:
            parsed[str(name)] = parse_job(name, spec)
        except InvalidJobDefinition as error:
            parsed[str(name)] = error
    return parsed


def definitions() -> dict[str, Job | InvalidJobDefinition]:
    """Every declared job, or the reason its definition is unusable."""
    return dict(_parse_all())


def all_jobs() -> dict[str, Job]:
    """The jobs whose definitions are valid, in declaration order."""
    return {name: job for name, job in _parse_all().items() if isinstance(job, Job)}


def get_job(name: str) -> Job:
    job = _parse_all().get(name)
    if job is None:
        raise UnknownJob(f"There is no job named {name!r}.")
    if isinstance(job, InvalidJobDefinition):
        raise JobMisconfigured(
            f"Job {name!r} is misconfigured; run `manage.py check` for details."
        )
    return job


@receiver(setting_changed)
def _reset_jobs(*, setting: str, **kwargs: object) -> None:
    if setting == "CRONHOOKS":
        _parse_all.cache_clear()
