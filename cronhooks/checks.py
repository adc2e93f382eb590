"""System checks: every configuration mistake surfaces in ``manage.py check``.

One id per problem, each with one fix; ids are stable, listed in the README
and each provoked by a test in ``tests/test_checks.py``. The types and bounds
of the settings come from their one schema, ``conf.SETTINGS``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.urls import NoReverseMatch, reverse

from cronhooks import targets
from cronhooks.alerts.base import AlertBackend, InvalidAlertBackend, alert_backends
from cronhooks.auth import TokenProblem, reads_tokens, token_problems
from cronhooks.authenticators import (
    Authenticator,
    InvalidAuthenticator,
    authenticator_backends,
)
from cronhooks.authenticators.base import secret_problems
from cronhooks.clients import parse_network
from cronhooks.conf import (
    MIN_TOKEN_LENGTH,
    SETTINGS,
    Setting,
    conf,
    unknown_keys,
)
from cronhooks.exceptions import InvalidJobDefinition
from cronhooks.jobs import Job, definitions
from cronhooks.locks import InvalidLockBackend, load_backend
from cronhooks.ratelimit import HEADER_NAME, LIMIT_NAMES, parse_limit


@register(Tags.security)
def check_tokens(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    usable, _ = _load_authenticators()
    if not reads_tokens(usable):
        return []  # no authenticator reads TOKENS (or none loads: E042)
    if not conf.tokens:
        return [
            Error(
                "No bearer token is configured, so every trigger is refused.",
                hint="Set CRONHOOKS['TOKENS'] to a list of secrets, e.g. from an "
                "environment variable; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`.",
                id="cronhooks.E001",
            )
        ]
    # Never show a token: each is named by its position in the setting.
    return [_token_error(problem) for problem in token_problems()]


@register(Tags.security)
def check_metrics_tokens(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    raw = conf.raw.get("METRICS_TOKENS", [])
    # A value of the wrong type is check_settings' (E011). Never show a
    # token: each is named by its position in the setting.
    return [
        Error(
            f"Token #{problem.position} in CRONHOOKS['METRICS_TOKENS'] is not a "
            f"string of at least {MIN_TOKEN_LENGTH} sendable characters.",
            hint="Use a long random secret such as secrets.token_urlsafe(32), "
            "without spaces or a trailing newline, or leave the setting out.",
            id="cronhooks.E048",
        )
        for problem in secret_problems(raw, min_length=MIN_TOKEN_LENGTH)
    ]


def _token_error(problem: TokenProblem) -> CheckMessage:
    where = f"Token #{problem.position} in CRONHOOKS['TOKENS']"
    if problem.kind == "not_a_string":
        return Error(
            f"{where} is not a non-empty string.",
            hint="A list built from an environment variable may hold an "
            "empty entry: leave empty strings out.",
            id="cronhooks.E020",
        )
    if problem.kind == "unsendable":
        return Error(
            f"{where} contains spaces, control or non-ASCII characters, so no "
            "request can send it.",
            hint="A token read from a file may end with a newline: strip it.",
            id="cronhooks.E012",
        )
    return Error(
        f"{where} is {problem.length} characters; at least {MIN_TOKEN_LENGTH} "
        "are required.",
        hint="Use a long random secret such as secrets.token_urlsafe(32).",
        id="cronhooks.E002",
    )


def _load_authenticators() -> tuple[list[Authenticator], list[CheckMessage]]:
    """The authenticators of ``AUTHENTICATORS``, built anew, and an E042 for
    each entry that cannot be."""
    entries = conf.raw.get("AUTHENTICATORS", SETTINGS["AUTHENTICATORS"].default)
    if not isinstance(entries, list | tuple):
        return [], []  # reported by check_settings (E011)
    usable: list[Authenticator] = []
    errors: list[CheckMessage] = []
    for position, entry in enumerate(entries):
        try:
            path, options = authenticator_backends.parse_entry(position, entry)
            usable.append(authenticator_backends.load(str(position), path, options))
        except InvalidAuthenticator as error:
            errors.append(
                Error(
                    str(error),
                    hint="e.g. {'BACKEND': 'cronhooks.authenticators.signature."
                    "SignatureAuthenticator', 'OPTIONS': {'SECRETS': [...]}}; "
                    "see the README's 'Authenticating callers'.",
                    id="cronhooks.E042",
                )
            )
    if not entries:
        errors.append(
            Error(
                "CRONHOOKS['AUTHENTICATORS'] is empty, so every request is refused.",
                hint="Leave it out to accept the bearer tokens of TOKENS, or list "
                "the authenticators your schedulers need.",
                id="cronhooks.E042",
            )
        )
    return usable, errors


@register(Tags.security)
def check_authenticators(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Entries that cannot be built (E042), and options that cannot work (E043)."""
    usable, errors = _load_authenticators()
    for authenticator in usable:
        errors.extend(
            Error(
                f"Authenticator {type(authenticator).__name__}: {problem}",
                id="cronhooks.E043",
            )
            for problem in authenticator.check_configuration()
        )
    return errors


@register(Tags.security)
def check_authenticator_secrets(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Missing or weak secrets of the authenticators (E044), never shown."""
    usable, _ = _load_authenticators()
    return [
        Error(
            f"Authenticator {type(authenticator).__name__}: {problem}",
            hint="Use a long random secret such as secrets.token_urlsafe(32), "
            "from an environment variable; a list built from an empty one "
            "holds an empty entry.",
            id="cronhooks.E044",
        )
        for authenticator in usable
        for problem in authenticator.secret_problems()
    ]


@register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    raw = getattr(settings, "CRONHOOKS", {})
    if not isinstance(raw, Mapping):
        return [
            Error(
                "CRONHOOKS must be a dict.",
                hint=f"It is a {type(raw).__name__}.",
                id="cronhooks.E018",
            )
        ]
    errors = _unknown_keys("CRONHOOKS", raw, SETTINGS)
    for key, value in raw.items():
        if key in SETTINGS:
            errors.extend(_value_problems(f"CRONHOOKS[{key!r}]", SETTINGS[key], value))
    return errors


def _unknown_keys(
    where: str, given: Mapping[Any, Any], known: Mapping[str, Setting]
) -> list[CheckMessage]:
    unknown = set(given) - set(known)
    if not unknown:
        return []
    return [
        Error(
            f"{where} {unknown_keys(unknown, known)}",
            hint="A misspelt key is ignored: its default applies.",
            id="cronhooks.E003",
        )
    ]


def _value_problems(where: str, setting: Setting, value: object) -> list[CheckMessage]:
    """E011 for a value of the wrong type, E019 for one out of bounds."""
    if not setting.has_type(value):
        # The global switch fails safe: only True turns cronhooks on.
        fallback = (
            "cronhooks is switched off"
            if setting is SETTINGS["ENABLED"]
            else f"the default {setting.default!r} applies"
        )
        return [
            Error(
                f"{where} is a {type(value).__name__}; it takes {setting.type_name}.",
                hint=f"Until it is fixed, {fallback}.",
                id="cronhooks.E011",
            )
        ]
    if not setting.in_bounds(value):
        return [
            Error(
                f"{where} is {value!r}; it must be {setting.bounds}.",
                hint=f"Until it is fixed, the default {setting.default!r} applies.",
                id="cronhooks.E019",
            )
        ]
    return []


def _dict_setting_problems(setting: Setting) -> list[CheckMessage]:
    """Unknown keys (E003) and mistyped values (E011) in LOCKS or RATE_LIMITS.

    A ``setting`` that is not a dict at all is reported by check_settings.
    """
    given = conf.raw.get(setting.name, {})
    if not isinstance(given, Mapping):
        return []
    where = f"CRONHOOKS[{setting.name!r}]"
    errors = _unknown_keys(where, given, setting.fields)
    for key, value in given.items():
        if key in setting.fields:
            errors.extend(
                _value_problems(f"{where}[{key!r}]", setting.fields[key], value)
            )
    return errors


@register()
def check_jobs(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for job in definitions().values():
        if isinstance(job, InvalidJobDefinition):
            errors.append(Error(str(job), id=job.check_id))
        else:
            found: list[CheckMessage] = [
                Error(
                    str(problem),
                    hint=problem.hint or None,
                    id=_TARGET_IDS[problem.reason],
                )
                for problem in targets.problems(job)
            ]
            if not found and job.command:
                found = _check_repeated_options(job)
            errors.extend(found)
    return errors


# The problems each process also finds before its first trigger (see
# cronhooks.targets), under the ids they have always had.
_TARGET_IDS = {
    "unknown_command": "cronhooks.E005",
    "unknown_callable": "cronhooks.E005",
    "invalid_args": "cronhooks.E006",
}


def _check_repeated_options(job: Job) -> list[CheckMessage]:
    """An option set by a fixed ``args`` flag and again by ``options`` or a
    parameter: ``call_command`` lets the latter win without a word, so the
    flag is dead whenever the parameter is passed. Only asked of a job whose
    command exists and parses its ``args`` (else E005 or E006 says why)."""
    from_args = targets.set_by_args(job)
    repeated = [
        *(f"option {name!r}" for name in job.options if name in from_args),
        *(
            f"parameter {param.name!r} (option {param.option!r})"
            for param in job.params.values()
            if param.option in from_args
        ),
    ]
    if not repeated:
        return []
    return [
        Error(
            f"Job {job.name!r} sets {', '.join(repeated)}, which its 'args' "
            "already set: the value from 'args' is silently replaced.",
            hint="Set each option in one place: drop the flag from 'args' (a "
            "parameter's 'default' can give its value).",
            id="cronhooks.E032",
        )
    ]


@register()
def check_locks(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    # Types first: a backend is loaded only from the LOCKS as written.
    mistakes = _dict_setting_problems(SETTINGS["LOCKS"])
    if mistakes or not isinstance(conf.raw.get("LOCKS", {}), Mapping):
        return mistakes
    try:
        backend = load_backend(conf.lock_backend_path, conf.lock_options)
    except InvalidLockBackend as error:
        return [
            Error(
                str(error),
                hint="Use cronhooks.locks.database.DatabaseLockBackend, "
                "cronhooks.locks.redis.RedisLockBackend or your own LockBackend.",
                id="cronhooks.E009",
            )
        ]
    return [
        Error(
            f"Lock backend {conf.lock_backend_path!r}: {problem}",
            id="cronhooks.E010",
        )
        for problem in backend.check_configuration()
    ]


@register()
def check_rate_limits(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    limits = conf.raw.get("RATE_LIMITS", {})
    if not isinstance(limits, Mapping):
        return []  # reported by check_settings
    errors = _dict_setting_problems(SETTINGS["RATE_LIMITS"])
    for name in LIMIT_NAMES:
        value = limits.get(name)
        if not isinstance(value, str):
            continue  # None is no limit; another type is an E011
        try:
            parse_limit(value)
        except ValueError as error:
            errors.append(
                Error(
                    f"CRONHOOKS['RATE_LIMITS'][{name!r}]: {error}. Until it is "
                    "fixed, this limit is off.",
                    hint="A count per period (s, m, h or d, optionally a "
                    "multiple): '10/m', '100/5m', '1000/d'; None for no limit.",
                    id="cronhooks.E014",
                )
            )
    alias = conf.rate_limits["CACHE"]
    if alias not in settings.CACHES:
        errors.append(
            Error(
                f"CRONHOOKS['RATE_LIMITS']['CACHE'] is {alias!r}, which is not in "
                "settings.CACHES, so no request is limited.",
                hint="Name a CACHES alias; in production one on Redis, so that "
                "every process counts together.",
                id="cronhooks.E021",
            )
        )
    header = conf.rate_limits["IP_HEADER"]
    if not HEADER_NAME.fullmatch(header):
        errors.append(
            Error(
                f"CRONHOOKS['RATE_LIMITS']['IP_HEADER'] is {header!r}, which is not "
                "a header name.",
                hint="The header as the proxy sends it, e.g. 'CF-Connecting-IP' "
                "or 'X-Forwarded-For' (not request.META's 'HTTP_...' key); "
                "'' uses REMOTE_ADDR.",
                id="cronhooks.E022",
            )
        )
    return errors


@register(Tags.security)
def check_networks(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name in ("ALLOWED_NETWORKS", "TRUSTED_PROXIES"):
        entries = conf.raw.get(name, [])
        if not isinstance(entries, list | tuple):
            continue  # reported by check_settings (E011)
        for position, entry in enumerate(entries, start=1):
            try:
                parse_network(entry)
            except ValueError as error:
                errors.append(
                    Error(
                        f"Entry #{position} of CRONHOOKS[{name!r}] is not a "
                        f"network: {error}. Until it is fixed, it is left out.",
                        hint="A CIDR with no host bits set ('10.0.0.0/8', "
                        "'2001:db8::/32') or one address ('192.0.2.7').",
                        id="cronhooks.E040",
                    )
                )
    limits = conf.raw.get("RATE_LIMITS", {})
    header = limits.get("IP_HEADER") if isinstance(limits, Mapping) else None
    if header and not conf.raw.get("TRUSTED_PROXIES"):
        errors.append(
            Error(
                f"CRONHOOKS['RATE_LIMITS']['IP_HEADER'] is {header!r}, but no "
                "CRONHOOKS['TRUSTED_PROXIES'] are set, so the header is never "
                "read: every client's address is REMOTE_ADDR.",
                hint="List your proxies' networks in TRUSTED_PROXIES (e.g. "
                "Cloudflare's ranges): a header is believed only from them, as "
                "anyone reaching the app directly could write it.",
                id="cronhooks.E041",
            )
        )
    return errors


@register()
def check_alerts(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    entries = conf.raw.get("ALERTS", {})
    if not isinstance(entries, Mapping):
        return []  # reported by check_settings
    errors: list[CheckMessage] = []
    usable: dict[str, tuple[str, dict[str, Any]]] = {}
    backends: dict[str, AlertBackend] = {}
    for alias, entry in entries.items():
        try:
            path, options = alert_backends.parse_entry(alias, entry)
            backend = backends[alias] = alert_backends.load(alias, path, options)
        except InvalidAlertBackend as error:
            errors.append(
                Error(
                    str(error),
                    hint="e.g. {'BACKEND': 'cronhooks.alerts.slack.SlackAlertBackend', "
                    "'OPTIONS': {'WEBHOOK_URL': ...}}; cronhooks.alerts.email."
                    "EmailAlertBackend or your own AlertBackend subclass also work.",
                    id="cronhooks.E013",
                )
            )
            continue
        usable[alias] = (path, options)
        errors.extend(
            Error(f"Alert backend {alias!r}: {problem}", id="cronhooks.E023")
            for problem in backend.check_configuration()
        )
    for job in definitions().values():
        if not isinstance(job, Job):
            continue  # reported by check_jobs
        errors.extend(_job_alert_errors(job, backends, usable))
        for alias, overrides in (job.alerts or {}).items():
            if alias not in entries:
                errors.append(
                    Error(
                        f"Job {job.name!r} has alert options for {alias!r}, which is "
                        "not in CRONHOOKS['ALERTS'].",
                        hint=f"Aliases in CRONHOOKS['ALERTS']: "
                        f"{', '.join(map(str, entries)) or 'none'}.",
                        id="cronhooks.E024",
                    )
                )
            elif alias in usable:
                path, options = usable[alias]
                backend = alert_backends.load(alias, path, {**options, **overrides})
                errors.extend(
                    Error(
                        f"Job {job.name!r}, alert backend {alias!r}: {problem}",
                        id="cronhooks.E023",
                    )
                    for problem in backend.check_configuration()
                )
    return errors


def _job_alert_errors(
    job: Job,
    backends: Mapping[str, AlertBackend],
    usable: Mapping[str, tuple[str, dict[str, Any]]],
) -> list[CheckMessage]:
    """What each channel says of serving ``job`` (its overrides merged in)."""
    if job.alerts is None:
        return []
    errors: list[CheckMessage] = []
    for alias, backend in backends.items():
        overrides = job.alerts.get(alias)
        if overrides:
            path, options = usable[alias]
            backend = alert_backends.load(alias, path, {**options, **overrides})
        errors.extend(
            Error(
                f"Job {job.name!r}, alert backend {alias!r}: {problem}",
                id="cronhooks.E045",
            )
            for problem in backend.check_job(job)
        )
    return errors


@register()
def check_tasks(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Background jobs need a task backend that runs them somewhere else."""
    from cronhooks.exceptions import TasksUnavailable
    from cronhooks.runs.tasks import INLINE_BACKENDS, task_backend, tasks_api

    background = [
        job for job in definitions().values() if isinstance(job, Job) and job.background
    ]
    if not background:
        return []
    names = ", ".join(job.name for job in background)
    if tasks_api() is None:
        return [
            Error(
                f"Job(s) {names} run in the background, but neither django.tasks "
                "(Django 6.0+) nor the django-tasks package is installed.",
                hint="pip install 'django-cronhooks[tasks]' (or '[rq]') and "
                "configure settings.TASKS.",
                id="cronhooks.E025",
            )
        ]
    try:
        backend = task_backend()
    except TasksUnavailable as error:
        return [
            Error(
                f"Job(s) {names} run in the background, but {error.message}",
                hint="CRONHOOKS['TASK_BACKEND'] (now "
                f"{conf.task_backend!r}) must name an alias of settings.TASKS "
                "whose backend can be loaded.",
                id="cronhooks.E016",
            )
        ]
    errors: list[CheckMessage] = []
    if backend.queues and conf.task_queue not in backend.queues:
        errors.append(
            Error(
                f"CRONHOOKS['TASK_QUEUE'] is {conf.task_queue!r}, which the task "
                f"backend {conf.task_backend!r} does not serve.",
                hint=f"Its QUEUES: {', '.join(sorted(backend.queues))}.",
                id="cronhooks.E017",
            )
        )
    kind = type(backend).__name__
    if kind in INLINE_BACKENDS and not settings.DEBUG:
        errors.append(
            Warning(
                f"Job(s) {names} run in the background, but the task backend "
                f"{conf.task_backend!r} is the {kind}: "
                + (
                    "runs run inside the request that triggers them."
                    if kind == "ImmediateBackend"
                    else "runs are never run."
                ),
                hint="Use django_tasks_db.DatabaseBackend (python manage.py "
                "db_worker) or django_tasks_rq.RQBackend (python manage.py "
                "rqworker) in settings.TASKS.",
                id="cronhooks.W001",
            )
        )
    if type(backend).__module__.startswith("django_tasks_rq"):
        errors.extend(_check_rq_timeouts(background))
    errors.extend(_check_secret_params(background))
    return errors


def _check_secret_params(background: list[Job]) -> list[CheckMessage]:
    """A background run's parameters travel in its task's arguments, which the
    task engine stores as they are (its admin, Redis), unlike the run history,
    which never stores a secret-looking parameter's value."""
    from cronhooks.redaction import looks_secret

    return [
        Warning(
            f"Job {job.name!r} runs in the background with parameter(s) "
            f"{', '.join(secret)} whose names look secret: their values are stored "
            "by the task engine (in its task arguments) as they are.",
            hint="Pass secrets to jobs through settings or the environment, not "
            "as trigger parameters.",
            id="cronhooks.W003",
        )
        for job in background
        if (secret := sorted(name for name in job.params if looks_secret(name)))
    ]


def _check_rq_timeouts(background: list[Job]) -> list[CheckMessage]:
    """RQ stops a job at its queue's DEFAULT_TIMEOUT (180 s unless set), before
    cronhooks' own time limit: the run is recorded failed, not timed_out, and
    RQ kills a work horse that does not stop."""
    queue = getattr(settings, "RQ_QUEUES", {}).get(conf.task_queue, {})
    limit = queue.get("DEFAULT_TIMEOUT", 180) if isinstance(queue, Mapping) else 180
    if limit is None or limit == -1:
        return []
    short = [
        job.name
        for job in background
        if job.timeout is None or job.timeout + conf.timeout_grace >= limit
    ]
    if not short:
        return []
    return [
        Warning(
            f"RQ stops jobs on queue {conf.task_queue!r} after {limit} s, before "
            f"the time limit of job(s) {', '.join(short)}: such a run would be "
            "recorded failed (JobTimeoutException), and a work horse that does not "
            "stop is killed, its run left 'running' until its lock expires.",
            hint=f"Set RQ_QUEUES[{conf.task_queue!r}]['DEFAULT_TIMEOUT'] to -1 (no "
            "limit) and give each job a 'timeout', which cronhooks enforces.",
            id="cronhooks.W002",
        )
    ]


@register(Tags.urls)
def check_urls_included(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    # Without them every scheduler call is a 404 that no run history
    # records; a project that only runs jobs with `cronhooks run` may mean it.
    try:
        reverse("cronhooks:health")
    except NoReverseMatch:
        return [
            Warning(
                "cronhooks' URLs are not included in ROOT_URLCONF, so schedulers "
                "get 404 from /cron/<job> and /health.",
                hint="Add path('', include('cronhooks.urls')) to your urlpatterns.",
                id="cronhooks.W004",
            )
        ]
    return []
