"""Job definitions: the allowlist of what an HTTP trigger may run.

A job is declared in ``CRONHOOKS["JOBS"]`` as ``name: {...}`` with these keys:

``command``      management command name (or ``callable``, a dotted path)
``args``         fixed command-line arguments, e.g. ``["--recently-updated"]``
``options``      fixed options by destination name, e.g. ``{"verbosity": 0}``
``params``       parameters a caller may pass, ``name: {type, min, max, ...}``
``schedule``     a cron expression (five fields, UTC), or a dict of Worker
                 environment -> cron expression; absent for manual jobs
``lock_ttl``     seconds a run may hold the job's lock (default 3600)
``enabled``      False refuses triggers with 503 (default True)
``description``  free text shown by ``cronhooks list`` and ``/health``
``grace``        seconds after a scheduled tick by which a run must have
                 succeeded before the job counts as overdue (default 900)
``critical``     True makes an overdue or failing job turn ``/health`` 503
``alerts``       per-job option overrides by alert alias, e.g.
                 ``{"slack": {"WEBHOOK_URL": "..."}}``; False sends none
``heartbeat_url`` a healthchecks.io-style URL pinged at start, success, fail
``background``   True always runs it on a task worker: a trigger is answered
                 202 with a status URL (default False: in the request, unless
                 the caller sends ``Prefer: respond-async``)
``timeout``      seconds a run may take before it is stopped and recorded
                 ``timed_out`` (default None: no limit)
``retries``      how many times a failed or timed-out background run is
                 tried again (default 0)
``retry_delay``  seconds before the first retry, doubled for each next one,
                 with up to 20% jitter (default 60)
``queue_timeout`` seconds a background run may wait for a task worker before
                 it counts as stalled (default 3600)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cache
from typing import Any, Literal, cast
from urllib.parse import urlencode

from cronsim import CronSim, CronSimError
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from cronhooks.conf import conf
from cronhooks.exceptions import (
    InvalidJobDefinition,
    InvalidParameters,
    JobMisconfigured,
    UnknownJob,
)

ANY_ENVIRONMENT = "*"
ENVIRONMENT_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
JOB_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
PARAM_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
DEFAULT_LOCK_TTL = 3600
DEFAULT_GRACE = 15 * 60
DEFAULT_MAX_LENGTH = 200
DEFAULT_RETRY_DELAY = 60
DEFAULT_QUEUE_TIMEOUT = 60 * 60
# Paths under the trigger URL's prefix that cronhooks itself serves.
RESERVED_JOB_NAMES = frozenset({"runs"})

JOB_KEYS = frozenset(
    {
        "command",
        "callable",
        "args",
        "options",
        "params",
        "schedule",
        "lock_ttl",
        "enabled",
        "description",
        "grace",
        "critical",
        "alerts",
        "heartbeat_url",
        "background",
        "timeout",
        "retries",
        "retry_delay",
        "queue_timeout",
    }
)
PARAM_KEYS = frozenset(
    {"type", "option", "default", "required", "min", "max", "choices", "max_length"}
)
ParamType = Literal["int", "float", "bool", "str"]
PARAM_TYPES: tuple[ParamType, ...] = ("int", "float", "bool", "str")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
_INT_RE = re.compile(r"[+-]?[0-9]{1,18}")
_FLOAT_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    option: str
    default: Any = None
    required: bool = False
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    max_length: int = DEFAULT_MAX_LENGTH

    def clean(self, value: object) -> Any:
        """Coerce a query-string or JSON value, or raise ``ValueError``."""
        cleaned = _COERCERS[self.type](value)
        if isinstance(cleaned, int | float) and not isinstance(cleaned, bool):
            if self.min is not None and cleaned < self.min:
                raise ValueError(f"must be at least {_number(self.min)}")
            if self.max is not None and cleaned > self.max:
                raise ValueError(f"must be at most {_number(self.max)}")
        if isinstance(cleaned, str) and len(cleaned) > self.max_length:
            raise ValueError(f"must be at most {self.max_length} characters")
        if self.choices and cleaned not in self.choices:
            allowed = ", ".join(str(choice) for choice in self.choices)
            raise ValueError(f"must be one of: {allowed}")
        return cleaned


@dataclass(frozen=True)
class Job:
    name: str
    command: str = ""
    callable: str = ""
    args: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Param] = field(default_factory=dict)
    # Environment name (or ANY_ENVIRONMENT) -> cron expression, in UTC.
    schedules: Mapping[str, str] = field(default_factory=dict)
    lock_ttl: int = DEFAULT_LOCK_TTL
    enabled: bool = True
    description: str = ""
    grace: int = DEFAULT_GRACE
    critical: bool = False
    # Alert alias -> option overrides; None sends no alerts for this job.
    # Out of the repr, as a webhook or heartbeat URL is a secret.
    alerts: Mapping[str, Mapping[str, Any]] | None = field(
        default_factory=dict, repr=False
    )
    heartbeat_url: str = field(default="", repr=False)
    background: bool = False
    timeout: int | None = None
    retries: int = 0
    retry_delay: int = DEFAULT_RETRY_DELAY
    queue_timeout: int = DEFAULT_QUEUE_TIMEOUT

    @property
    def target(self) -> str:
        """What the job runs, as a person would type it."""
        if self.callable:
            return self.callable
        return " ".join([self.command, *self.args])

    def clean_params(self, raw: Mapping[str, object]) -> dict[str, Any]:
        """Validate caller parameters, or raise ``InvalidParameters`` naming each."""
        errors: dict[str, str] = {}
        cleaned: dict[str, Any] = {}
        for name in raw:
            if name not in self.params:
                errors[name] = "unknown parameter"
        for name, param in self.params.items():
            if name in raw:
                try:
                    cleaned[name] = param.clean(raw[name])
                except ValueError as error:
                    errors[name] = str(error)
            elif param.required:
                errors[name] = "is required"
            elif param.default is not None:
                cleaned[name] = param.default
        if errors:
            summary = "; ".join(f"{name}: {reason}" for name, reason in errors.items())
            raise InvalidParameters(f"Invalid parameters: {summary}.", details=errors)
        return cleaned

    def call_options(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword options for ``call_command``: fixed options plus parameters."""
        options = dict(self.options)
        for name, value in params.items():
            options[self.params[name].option] = value
        return options

    def load_callable(self) -> Callable[..., object]:
        return cast("Callable[..., object]", import_string(self.callable))

    @property
    def active(self) -> bool:
        """Whether a trigger may run it: its own switch and the global one."""
        return self.enabled and conf.enabled

    def schedule_in(self, environment: str) -> str:
        """The cron expression in ``environment``, or "" when not scheduled there."""
        return self.schedules.get(environment, self.schedules.get(ANY_ENVIRONMENT, ""))

    @property
    def schedule(self) -> str:
        """The cron expression in this deployment's ``ENVIRONMENT``."""
        return self.schedule_in(conf.environment)

    @property
    def worker_target(self) -> str:
        """The path after ``/cron/`` a scheduler calls: defaults made explicit."""
        defaults = {
            name: str(param.default).lower()
            if isinstance(param.default, bool)
            else str(param.default)
            for name, param in self.params.items()
            if param.default is not None
        }
        return f"{self.name}?{urlencode(defaults)}" if defaults else self.name

    def next_run(self, after: datetime) -> datetime | None:
        if not self.schedule:
            return None
        return next(CronSim(self.schedule, after))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _to_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value)
    raise ValueError("must be an integer")


def _to_float(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    numeric = isinstance(value, int | float) or (
        isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()) is not None
    )
    if not numeric:
        raise ValueError("must be a number")
    try:
        number = float(cast("str | float", value))
    except OverflowError:  # a JSON integer beyond any float
        raise ValueError("must be a finite number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ValueError("must be true or false")


def _to_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. JSON "\ud800"
        raise ValueError("must be valid Unicode") from None
    return value


_COERCERS: dict[str, Callable[[object], Any]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "str": _to_str,
}


def parse_param(job_name: str, name: str, spec: object) -> Param:
    where = f"Job {job_name!r} parameter {name!r}"

    def invalid(message: str) -> InvalidJobDefinition:
        return InvalidJobDefinition(f"{where} {message}", check_id="cronhooks.E007")

    if not isinstance(name, str) or not PARAM_NAME_RE.fullmatch(name):
        raise invalid("needs a name of lowercase letters, digits and underscores.")
    if not isinstance(spec, Mapping):
        raise invalid("must be a dict.")
    unknown = sorted(map(str, set(spec) - PARAM_KEYS))
    if unknown:
        raise invalid(f"has unknown keys: {', '.join(unknown)}.")
    kind = spec.get("type")
    if kind not in PARAM_TYPES:
        raise invalid(f"has type {kind!r}; use one of {', '.join(PARAM_TYPES)}.")
    option = spec.get("option", name)
    if not isinstance(option, str) or not option.isidentifier():
        raise invalid("has an 'option' that is not a command option name.")
    bounds: dict[str, float | None] = {}
    for key in ("min", "max"):
        bound = spec.get(key)
        if bound is not None and (
            kind not in ("int", "float")
            or isinstance(bound, bool)
            or not isinstance(bound, int | float)
        ):
            raise invalid(f"has '{key}' but only int and float take numeric bounds.")
        bounds[key] = bound
    low, high = bounds["min"], bounds["max"]
    if low is not None and high is not None and low > high:
        raise invalid("has 'min' greater than 'max'.")
    max_length = spec.get("max_length", DEFAULT_MAX_LENGTH)
    if (
        isinstance(max_length, bool)
        or not isinstance(max_length, int)
        or max_length < 1
    ):
        raise invalid("has a 'max_length' that is not a positive integer.")
    required = spec.get("required", False)
    if not isinstance(required, bool):
        raise invalid("has a 'required' that is not True or False.")
    choices = spec.get("choices", ())
    if not isinstance(choices, list | tuple):
        raise invalid("has 'choices' that are not a list.")
    param = Param(
        name=name,
        type=kind,
        option=option,
        required=required,
        min=low,
        max=high,
        choices=tuple(choices),
        max_length=max_length,
    )
    cleaned_choices = []
    for choice in param.choices:
        try:
            cleaned_choices.append(replace(param, choices=()).clean(choice))
        except ValueError as error:
            raise invalid(f"has a choice {choice!r} that {error}.") from None
    param = replace(param, choices=tuple(cleaned_choices))
    default = spec.get("default")
    if default is not None:
        if required:
            raise invalid("is required, so it cannot have a default.")
        try:
            default = param.clean(default)
        except ValueError as error:
            raise invalid(f"has a default {default!r} that {error}.") from None
    return replace(param, default=default)


def _parse_schedules(
    value: object, invalid: Callable[[str, str], InvalidJobDefinition]
) -> dict[str, str]:
    """A cron expression for every environment, or one per environment."""
    if isinstance(value, str):
        by_environment = {ANY_ENVIRONMENT: value} if value else {}
    elif isinstance(value, Mapping) and all(
        isinstance(key, str) and ENVIRONMENT_RE.fullmatch(key) for key in value
    ):
        by_environment = dict(value)
    else:
        raise invalid(
            "has a 'schedule' that is neither a cron expression nor a dict of "
            "environment name to cron expression.",
            "cronhooks.E008",
        )
    for schedule in by_environment.values():
        if not isinstance(schedule, str):
            raise invalid(
                f"has a schedule {schedule!r} that is not a string.", "cronhooks.E008"
            )
        if schedule and len(schedule.split()) != 5:
            # What Cloudflare, GitHub Actions and crontab accept; cronsim
            # would also take a sixth (seconds) field.
            raise invalid(
                f"has an invalid cron expression {schedule!r}: it needs exactly "
                "five fields (minute hour day-of-month month day-of-week).",
                "cronhooks.E008",
            )
        if schedule:
            try:
                CronSim(schedule, datetime.now(timezone.utc))
            except CronSimError as error:
                raise invalid(
                    f"has an invalid cron expression {schedule!r}: {error}.",
                    "cronhooks.E008",
                ) from None
    return {key: cron for key, cron in by_environment.items() if cron}


def parse_job(name: object, spec: object) -> Job:
    """Build a ``Job`` from its settings entry, or raise ``InvalidJobDefinition``."""
    if not isinstance(name, str) or not JOB_NAME_RE.fullmatch(name):
        raise InvalidJobDefinition(
            f"Job name {name!r} must be a slug of lowercase letters, digits, '-' "
            "and '_' (at most 64 characters): it is part of the URL.",
            check_id="cronhooks.E004",
        )
    if name in RESERVED_JOB_NAMES:
        raise InvalidJobDefinition(
            f"Job name {name!r} is reserved: /cron/{name}/ serves cronhooks' own "
            "endpoints. Choose another name.",
            check_id="cronhooks.E015",
        )

    def invalid(message: str, check_id: str = "cronhooks.E004") -> InvalidJobDefinition:
        return InvalidJobDefinition(f"Job {name!r} {message}", check_id=check_id)

    if not isinstance(spec, Mapping):
        raise invalid("must be a dict.")
    unknown = sorted(map(str, set(spec) - JOB_KEYS))
    if unknown:
        raise invalid(f"has unknown keys: {', '.join(unknown)}.")
    command = spec.get("command", "")
    target = spec.get("callable", "")
    if not isinstance(command, str) or not isinstance(target, str):
        raise invalid("needs 'command' and 'callable' to be strings.")
    if bool(command) == bool(target):
        raise invalid("needs exactly one of 'command' or 'callable'.")
    args = spec.get("args", [])
    if not isinstance(args, list | tuple) or not all(isinstance(a, str) for a in args):
        raise invalid("has 'args' that are not a list of strings.")
    if target and args:
        raise invalid("has 'args', which only a 'command' takes.")
    options = spec.get("options", {})
    if not isinstance(options, Mapping) or not all(
        isinstance(key, str) and key.isidentifier() for key in options
    ):
        raise invalid("has 'options' that are not a dict keyed by option names.")
    params_spec = spec.get("params", {})
    if not isinstance(params_spec, Mapping):
        raise invalid("has 'params' that are not a dict.", "cronhooks.E007")
    params = {
        param_name: parse_param(name, param_name, param_spec)
        for param_name, param_spec in params_spec.items()
    }
    feeds: dict[str, str] = {}
    for param in params.values():
        if param.option in options or param.option in feeds:
            raise invalid(
                f"feeds option {param.option!r} twice (parameter {param.name!r}).",
                "cronhooks.E007",
            )
        feeds[param.option] = param.name
    schedules = _parse_schedules(spec.get("schedule", ""), invalid)
    lock_ttl = spec.get("lock_ttl", DEFAULT_LOCK_TTL)
    if isinstance(lock_ttl, bool) or not isinstance(lock_ttl, int) or lock_ttl < 1:
        raise invalid("has a 'lock_ttl' that is not a positive number of seconds.")
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise invalid("has an 'enabled' that is not True or False.")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise invalid("has a 'description' that is not a string.")
    grace = spec.get("grace", DEFAULT_GRACE)
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
        raise invalid("has a 'grace' that is not a number of seconds (0 or more).")
    critical = spec.get("critical", False)
    if not isinstance(critical, bool):
        raise invalid("has a 'critical' that is not True or False.")
    alerts = spec.get("alerts", {})
    if alerts is False:
        alerts = None
    elif not isinstance(alerts, Mapping) or not all(
        isinstance(alias, str) and isinstance(options, Mapping)
        for alias, options in alerts.items()
    ):
        raise invalid(
            "has 'alerts' that are neither False nor a dict of alert alias to "
            "option overrides."
        )
    heartbeat_url = spec.get("heartbeat_url", "")
    if not isinstance(heartbeat_url, str) or (
        heartbeat_url and not re.match(r"https?://[^\s/]+", heartbeat_url)
    ):
        raise invalid("has a 'heartbeat_url' that is not an http(s) URL.")
    background = spec.get("background", False)
    if not isinstance(background, bool):
        raise invalid("has a 'background' that is not True or False.")
    timeout = spec.get("timeout")
    if timeout is not None and not _is_count(timeout, minimum=1):
        raise invalid("has a 'timeout' that is not a positive number of seconds.")
    retries = spec.get("retries", 0)
    if not _is_count(retries, minimum=0):
        raise invalid("has 'retries' that are not a number (0 or more).")
    retry_delay = spec.get("retry_delay", DEFAULT_RETRY_DELAY)
    if not _is_count(retry_delay, minimum=0):
        raise invalid(
            "has a 'retry_delay' that is not a number of seconds (0 or more)."
        )
    queue_timeout = spec.get("queue_timeout", DEFAULT_QUEUE_TIMEOUT)
    if not _is_count(queue_timeout, minimum=1):
        raise invalid("has a 'queue_timeout' that is not a positive number of seconds.")
    return Job(
        name=name,
        command=command,
        callable=target,
        args=tuple(args),
        options=dict(options),
        params=params,
        schedules=schedules,
        lock_ttl=lock_ttl,
        enabled=enabled,
        description=description,
        grace=grace,
        critical=critical,
        alerts=None if alerts is None else {k: dict(v) for k, v in alerts.items()},
        heartbeat_url=heartbeat_url.rstrip("/"),
        background=background,
        timeout=timeout,
        retries=retries,
        retry_delay=retry_delay,
        queue_timeout=queue_timeout,
    )


def _is_count(value: object, *, minimum: int) -> bool:
    """A whole number of at least ``minimum`` (True and False are not numbers)."""
    return not isinstance(value, bool) and isinstance(value, int) and value >= minimum


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
