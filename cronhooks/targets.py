"""What each job runs (a management command or a callable), resolved once per process.

``manage.py check`` reports a misspelt command or fixed args its parser
refuses, but gunicorn, ``--skip-checks`` deployments and task workers run no
system checks: such a job would fail on every tick while ``/health`` said
healthy. So the first trigger (or ``/health``) in each process resolves every
job's target the way ``call_command`` will: a job whose target does not
resolve is refused with 503 ``command_unavailable`` and makes ``/health``
unhealthy, while the other jobs keep running. The system checks report the
same problems from here (cronhooks.E005, cronhooks.E006).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from django.core.management import get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from cronhooks.exceptions import CommandUnavailable
from cronhooks.jobs import Job, all_jobs
from cronhooks.log import get_logger

logger = get_logger()


@dataclass(frozen=True)
class TargetProblem:
    """Why a job's target cannot run; ``reason`` is stable, for machines."""

    reason: str
    message: str
    hint: str = ""


def problems(job: Job) -> list[TargetProblem]:
    """Everything that stops ``job`` from running its target as written."""
    if job.callable:
        return _callable_problems(job)
    return _command_problems(job)


def _callable_problems(job: Job) -> list[TargetProblem]:
    try:
        target = import_string(job.callable)
    except ImportError as error:
        return [
            TargetProblem(
                "unknown_callable",
                f"Job {job.name!r} runs {job.callable!r}, which cannot be "
                f"imported: {error}",
            )
        ]
    if not callable(target):
        return [
            TargetProblem(
                "unknown_callable",
                f"Job {job.name!r} runs {job.callable!r}, which is not callable.",
            )
        ]
    return []


def _command_problems(job: Job) -> list[TargetProblem]:
    app_name = get_commands().get(job.command)
    if app_name is None:
        return [
            TargetProblem(
                "unknown_command",
                f"Job {job.name!r} runs the command {job.command!r}, which does "
                "not exist.",
                hint="Check the spelling and that the app providing it is in "
                "INSTALLED_APPS; `manage.py help` lists the commands.",
            )
        ]
    try:
        command = load_command(job.command)
    # Importing a project's command runs its module: any error there (a
    # missing dependency, a syntax error) means the command cannot run.
    except Exception as error:
        return [
            TargetProblem(
                "unknown_command",
                f"Job {job.name!r} runs the command {job.command!r}, which cannot "
                f"be loaded: {type(error).__name__}: {error}",
            )
        ]
    parser = command.create_parser("manage.py", job.command)
    # The sets call_command() accepts: its own parser decides, as it will
    # when the job runs.
    dests = {action.dest for action in parser._actions} | set(command.stealth_options)
    found: list[TargetProblem] = []
    try:
        _, unknown_args = parser.parse_known_args(list(job.args))
    except CommandError as error:
        unknown_args = [str(error)]
    if unknown_args:
        found.append(
            TargetProblem(
                "invalid_args",
                f"Job {job.name!r} passes {', '.join(unknown_args)} to "
                f"{job.command!r}, which does not accept it.",
                hint=f"`manage.py help {job.command}` lists its options.",
            )
        )
    targets = [*job.options, *(param.option for param in job.params.values())]
    unknown_options = [option for option in targets if option not in dests]
    if unknown_options:
        found.append(
            TargetProblem(
                "invalid_args",
                f"Job {job.name!r} sets option(s) {', '.join(unknown_options)} that "
                f"{job.command!r} does not accept.",
                hint="Options and a parameter's 'option' are destination names "
                f"(e.g. 'recently_updated_delta'); {job.command!r} accepts: "
                f"{', '.join(sorted(dests))}.",
            )
        )
    return found


def load_command(name: str) -> BaseCommand:
    """The command ``call_command(name)`` would run; KeyError if there is none."""
    app_name = get_commands()[name]
    if isinstance(app_name, BaseCommand):
        return app_name
    return load_command_class(app_name, name)


@cache
def unresolved() -> Mapping[str, TargetProblem]:
    """Each valid job whose target does not resolve, with its first problem.

    Computed once per process: the commands a process can run do not change
    while it lives, and resolving loads every command's module.
    """
    found = {}
    for name, job in all_jobs().items():
        job_problems = problems(job)
        if job_problems:
            found[name] = job_problems[0]
            logger.error(
                "job_command_unavailable",
                job=name,
                reason=job_problems[0].reason,
                error=job_problems[0].message,
            )
    return found


def ensure_runnable(job: Job) -> None:
    """Refuse ``job`` with ``CommandUnavailable`` when its target does not resolve."""
    problem = unresolved().get(job.name)
    if problem is not None:
        raise CommandUnavailable(
            f"{problem.message} It cannot run until this is fixed; "
            "`manage.py check` says more.",
            details={"reason": problem.reason},
        )


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: object) -> None:
    if setting in ("CRONHOOKS", "INSTALLED_APPS"):
        unresolved.cache_clear()
