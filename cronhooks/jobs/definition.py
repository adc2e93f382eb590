"""Reading a job's entry in ``CRONHOOKS["JOBS"]`` into a ``Job``.

``JOB_FIELDS`` lists every key a definition may have, with its type, default,
bounds and meaning (the README's "A job" table); ``parse_job`` checks each
value against it, then what a table cannot say (``args`` are strings, one of
``command`` or ``callable``...). Each mistake has its own system check id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cronhooks.conf import NoneType, Setting, unknown_keys
from cronhooks.exceptions import InvalidJobDefinition
from cronhooks.jobs.job import (
    DEFAULT_GRACE,
    DEFAULT_LOCK_TTL,
    DEFAULT_QUEUE_TIMEOUT,
    DEFAULT_RETRY_DELAY,
    Job,
)
from cronhooks.jobs.params import parse_param
from cronhooks.jobs.schedule import parse_schedules

JOB_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
# Paths under the trigger URL's prefix that cronhooks itself serves, and the
# check id of a job that takes one's name.
RESERVED_JOB_NAMES = {"runs": "cronhooks.E015", "metrics": "cronhooks.E047"}
_HTTP_URL = re.compile(r"https?://[^\s/]+")


def _is_http_url(url: str) -> bool:
    """An http(s) URL that ``urlsplit`` and requests can take apart."""
    if not _HTTP_URL.match(url):
        return False
    # "https://[::1" or "https://host:99999" pass the pattern; the run's
    # heartbeat (and the redaction of its URL from logs) would fail on them.
    try:
        urlsplit(url).port  # noqa: B018  (parsing it is the test)
    except ValueError:
        return False
    return True


JOB_FIELDS: dict[str, Setting] = {
    field.name: field
    for field in (
        Setting("command", (str,), "", "Management command name."),
        Setting("callable", (str,), "", "Instead of command: a function's path."),
        Setting("args", (list, tuple), (), "Fixed command-line arguments."),
        Setting("options", (Mapping,), {}, "Fixed options by destination name."),
        Setting("params", (Mapping,), {}, "Parameters a caller may pass."),
        Setting(
            "schedule",
            (str, Mapping),
            "",
            "A cron expression, or environment name -> cron expression.",
        ),
        Setting(
            "lock_ttl",
            (int,),
            DEFAULT_LOCK_TTL,
            "Seconds a run may hold the job's lock without renewing it.",
            minimum=1,
        ),
        Setting("enabled", (bool,), True, "False refuses triggers with 503."),
        Setting("description", (str,), "", "Free text."),
        Setting(
            "grace",
            (int,),
            DEFAULT_GRACE,
            "Seconds after a tick by which a run must have succeeded.",
            minimum=0,
        ),
        Setting("critical", (bool,), False, "True: overdue or failing is 503."),
        # False is the only bool taken; parse_job refuses True.
        Setting(
            "alerts",
            (Mapping, bool),
            {},
            "Option overrides by alert alias; False sends none.",
        ),
        Setting("heartbeat_url", (str,), "", "An http(s) URL pinged by each run."),
        Setting("background", (bool,), False, "True always runs on a task worker."),
        Setting(
            "timeout",
            (int, NoneType),
            None,
            "Seconds a run may take; None: no limit.",
            minimum=1,
        ),
        Setting(
            "retries",
            (int,),
            0,
            "More attempts of a failed background run.",
            minimum=0,
        ),
        Setting(
            "retry_delay",
            (int,),
            DEFAULT_RETRY_DELAY,
            "Seconds before the first retry, doubled for each next one.",
            minimum=0,
        ),
        Setting(
            "queue_timeout",
            (int,),
            DEFAULT_QUEUE_TIMEOUT,
            "Seconds a background run may wait for a worker.",
            minimum=1,
        ),
    )
}
JOB_KEYS = frozenset(JOB_FIELDS)
JOB_DEFAULTS = {key: field.default for key, field in JOB_FIELDS.items()}
_FIELD_ORDER = {key: position for position, key in enumerate(JOB_FIELDS)}


def parse_job(name: object, spec: object) -> Job:
    """Build a ``Job`` from its settings entry, or raise ``InvalidJobDefinition``."""
    if not isinstance(name, str) or not JOB_NAME_RE.fullmatch(name):
        raise InvalidJobDefinition(
            f"Job name {name!r} must be a slug of lowercase letters, digits, '-' "
            "and '_' (at most 64 characters): it is part of the URL.",
            check_id="cronhooks.E026",
        )
    if name in RESERVED_JOB_NAMES:
        raise InvalidJobDefinition(
            f"Job name {name!r} is reserved: /cron/{name}/ serves cronhooks' own "
            "endpoints. Choose another name.",
            check_id=RESERVED_JOB_NAMES[name],
        )

    def invalid(message: str, check_id: str = "cronhooks.E004") -> InvalidJobDefinition:
        return InvalidJobDefinition(f"Job {name!r} {message}", check_id=check_id)

    if not isinstance(spec, Mapping):
        raise invalid("must be a dict.", "cronhooks.E027")
    unknown = set(spec) - JOB_KEYS
    if unknown:
        raise invalid(unknown_keys(unknown, JOB_KEYS), "cronhooks.E028")
    # Only the keys a definition sets are checked, as every default is valid
    # (tests/test_jobs.py) and a job sets few keys; a registry of thousands
    # of jobs is parsed in each process. The mistake named is the first in
    # JOB_FIELDS' order, whatever the order of the definition's keys.
    wrong = [key for key in spec if not JOB_FIELDS[key].accepts(spec[key])]
    if wrong:
        key = min(wrong, key=_FIELD_ORDER.__getitem__)
        field, value = JOB_FIELDS[key], spec[key]
        # Said as the settings' own E011 and E019 say it.
        if not field.has_type(value):
            raise InvalidJobDefinition(
                f"CRONHOOKS['JOBS'][{name!r}][{key!r}] is a {type(value).__name__}; "
                f"it takes {field.type_name}.",
                check_id="cronhooks.E004",
            )
        raise InvalidJobDefinition(
            f"CRONHOOKS['JOBS'][{name!r}][{key!r}] is {value!r}; it must be "
            f"{field.bounds}.",
            check_id="cronhooks.E004",
        )
    values: dict[str, Any] = {**JOB_DEFAULTS, **spec}

    command, target, args = values["command"], values["callable"], values["args"]
    if bool(command) == bool(target):
        raise invalid("needs exactly one of 'command' or 'callable'.", "cronhooks.E029")
    if not all(isinstance(arg, str) for arg in args):
        raise invalid("has 'args' that are not a list of strings.")
    if target and args:
        raise invalid("has 'args', which only a 'command' takes.", "cronhooks.E030")
    options = values["options"]
    if not all(isinstance(key, str) and key.isidentifier() for key in options):
        raise invalid("has 'options' that are not a dict keyed by option names.")
    params = {
        param_name: parse_param(name, param_name, param_spec)
        for param_name, param_spec in values["params"].items()
    }
    feeds: dict[str, str] = {}
    for param in params.values():
        if param.option in options or param.option in feeds:
            raise invalid(
                f"feeds option {param.option!r} twice (parameter {param.name!r}).",
                "cronhooks.E039",
            )
        feeds[param.option] = param.name
    schedules = parse_schedules(values["schedule"], invalid)
    alerts = values["alerts"]
    if alerts is True or not (
        alerts is False
        or all(
            isinstance(alias, str) and isinstance(overrides, Mapping)
            for alias, overrides in alerts.items()
        )
    ):
        raise invalid(
            "has 'alerts' that are neither False nor a dict of alert alias to "
            "option overrides."
        )
    heartbeat_url = values["heartbeat_url"]
    if heartbeat_url and not _is_http_url(heartbeat_url):
        raise invalid("has a 'heartbeat_url' that is not an http(s) URL.")
    return Job(
        name=name,
        command=command,
        callable=target,
        args=tuple(args),
        options=dict(options),
        params=params,
        schedules=schedules,
        lock_ttl=values["lock_ttl"],
        enabled=values["enabled"],
        description=values["description"],
        grace=values["grace"],
        critical=values["critical"],
        alerts=None
        if alerts is False
        else {alias: dict(overrides) for alias, overrides in alerts.items()},
        heartbeat_url=heartbeat_url.rstrip("/"),
        background=values["background"],
        timeout=values["timeout"],
        retries=values["retries"],
        retry_delay=values["retry_delay"],
        queue_timeout=values["queue_timeout"],
    )
