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

import threading
from argparse import Namespace
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from django.core.management import get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from cronhooks.exceptions import CommandUnavailable
from cronhooks.jobs import Job, all_jobs
from cronhooks.log import get_logger

logger = get_logger()


@dataclass(frozen=True)
class TargetProblem:
    """Why a job's target cannot run; ``reason`` is stable, for machines.

    ``message`` is safe to answer a trigger with; ``error``, the exception a
    project module raised, is for the logs and ``manage.py check`` only: its
    text is the project's, not ours to send or store.
    """

    reason: str
    message: str
    hint: str = ""
    error: BaseException | None = field(default=None, compare=False)

    def __str__(self) -> str:
        if self.error is None:
            return self.message
        return f"{self.message} {type(self.error).__name__}: {self.error}"


def problems(job: Job) -> list[TargetProblem]:
    """Everything that stops ``job`` from running its target as written."""
    if job.callable:
        return _callable_problems(job)
    return _command_problems(job)


def _callable_problems(job: Job) -> list[TargetProblem]:
    found = _callable_problem(job.callable)
    if found is None:
        return []
    what, error = found
    return [
        TargetProblem(
            "unknown_callable",
            f"Job {job.name!r} runs {job.callable!r}, which {what}.",
            error=error,
        )
    ]


# A module that fails to import is imported again on every attempt: each
# target below is resolved once per process, whatever the number of jobs
# sharing it (a project's module may take a while to fail).


@cache
def _callable_problem(path: str) -> tuple[str, Exception | None] | None:
    """Why ``path`` cannot be called, and the error importing it raised; or None."""
    try:
        target = import_string(path)
    # Importing runs the project's module: whatever it raises, it cannot run.
    except Exception as error:
        return "cannot be imported", error
    if not callable(target):
        return "is not callable", None
    return None


@cache
def _load_error(name: str) -> Exception | None:
    """What loading the command ``name`` or building its parser raised, or None."""
    try:
        command_parser(name)
    # Loading runs the project's module and its add_arguments(): whatever
    # they raise (a missing dependency, a syntax error), it cannot run.
    except Exception as error:
        return error
    return None


def _command_problems(job: Job) -> list[TargetProblem]:
    if job.command not in get_commands():
        return [
            TargetProblem(
                "unknown_command",
                f"Job {job.name!r} runs the command {job.command!r}, which does "
                "not exist.",
                hint="Check the spelling and that the app providing it is in "
                "INSTALLED_APPS; `manage.py help` lists the commands.",
            )
        ]
    error = _load_error(job.command)
    if error is not None:
        return [
            TargetProblem(
                "unknown_command",
                f"Job {job.name!r} runs the command {job.command!r}, which cannot "
                "be loaded.",
                error=error,
            )
        ]
    found: list[TargetProblem] = []
    keywords = keyword_options(job)
    unknown_args = _unknown_args(job.command, job.args, frozenset(keywords))
    if unknown_args:
        found.append(
            TargetProblem(
                "invalid_args",
                f"Job {job.name!r} passes {', '.join(unknown_args)} to "
                f"{job.command!r}, which does not accept it.",
                hint=f"`manage.py help {job.command}` lists its options.",
            )
        )
    dests = _accepted_options(job.command)
    unknown_options = [option for option in keywords if option not in dests]
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
def command_parser(name: str) -> tuple[BaseCommand, CommandParser]:
    """The command and its parser, built once per process: a registry of
    thousands of jobs shares a few commands, and building a parser is what
    resolving a job costs."""
    command = load_command(name)
    return command, command.create_parser("manage.py", name)


@cache
def _accepted_options(name: str) -> frozenset[str]:
    """The options ``call_command(name)`` accepts as keywords: its own parser
    decides, as it will when the job runs."""
    command, parser = command_parser(name)
    return frozenset(action.dest for action in parser._actions) | frozenset(
        command.stealth_options
    )


def keyword_options(job: Job) -> list[str]:
    """The options ``call_command`` gets as keywords: fixed, then parameters."""
    return [*job.options, *(param.option for param in job.params.values())]


# What a command's parser makes of fixed args depends on the command, the
# args and the options given as keywords, never on the job's name: the two
# readings below are made once per distinct triple, as a registry of
# thousands of jobs repeats a few.


@cache
def _unknown_args(
    command: str, args: tuple[str, ...], keywords: frozenset[str]
) -> tuple[str, ...]:
    """The args the command's parser leaves unread, or the error it raises."""
    try:
        _, unknown = _parse_fixed_args(command, args, keywords)
    except CommandError as error:
        return (str(error),)
    return tuple(unknown)


def set_by_args(job: Job) -> frozenset[str]:
    """The destinations the job's fixed ``args`` set (not left at their default).

    Raises ``CommandError`` as the parser does; asked only of a job whose
    ``problems()`` are none.
    """
    return _set_by_args(job.command, job.args, frozenset(keyword_options(job)))


@cache
def _set_by_args(
    command: str, args: tuple[str, ...], keywords: frozenset[str]
) -> frozenset[str]:
    _, parser = command_parser(command)
    # Every destination starts as this marker: what args set is what changed.
    unset = object()
    namespace = Namespace(**{action.dest: unset for action in parser._actions})
    _parse_fixed_args(command, args, keywords, namespace)
    return frozenset(
        dest for dest, value in vars(namespace).items() if value is not unset
    )


# The parsers are shared; _parse_fixed_args() changes one for the length of
# a parse (unresolved() may run in several request threads at once).
_parsing = threading.Lock()


def _parse_fixed_args(
    command: str,
    args: tuple[str, ...],
    keywords: frozenset[str],
    namespace: Namespace | None = None,
) -> tuple[Namespace, list[str]]:
    """Fixed ``args`` as the command's parser reads them.

    As in ``call_command``, a required option that the job gives as a
    keyword is not asked of the args. Raises ``CommandError`` as the parser does.
    """
    _, parser = command_parser(command)
    with _parsing:
        relaxed = [a for a in parser._actions if a.required and a.dest in keywords]
        for action in relaxed:
            action.required = False
        try:
            return parser.parse_known_args(list(args), namespace)
        finally:
            for action in relaxed:
                action.required = True


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
            problem = found[name] = job_problems[0]
            logger.error(
                "job_command_unavailable",
                job=name,
                reason=problem.reason,
                error=problem.message,
                exc_info=problem.error,
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
        for cached in (
            unresolved,
            command_parser,
            _callable_problem,
            _load_error,
            _accepted_options,
            _unknown_args,
            _set_by_args,
        ):
            cached.cache_clear()
