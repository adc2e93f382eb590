"""Who is told what about a run: alerts to channels, heartbeats to monitors.

The run path (``runs.execution``) calls ``run_started`` and ``run_finished``.
A failed run, and the first success after a failure, is sent to every channel in
``CRONHOOKS["ALERTS"]`` (unless the job says ``"alerts": False``); a job's
``heartbeat_url`` is pinged at start, success and failure, and every channel
that sends heartbeats (Sentry Crons) is told of each attempt's start and end.
None raises into the run, and the run's answer waits for them
``ALERT_TIMEOUT`` seconds at most.
Everything a delivery needs is built here, in the run's thread: the delivery
threads never touch the database.
"""

from __future__ import annotations

import threading
import traceback
import weakref
from collections.abc import Mapping
from functools import partial
from urllib.parse import urlsplit, urlunsplit

from django.db import DatabaseError
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from cronhooks.alerts.base import (
    Alert,
    AlertBackend,
    AlertKind,
    Heartbeat,
    HeartbeatSignal,
    InvalidAlertBackend,
    alert_backends,
)
from cronhooks.alerts.delivery import Delivery, deliver, ping, start
from cronhooks.conf import conf
from cronhooks.jobs import Job
from cronhooks.log import get_logger
from cronhooks.models import FAILURES, FINISHED, JobRun
from cronhooks.redaction import option_secrets, redact, url_secrets

logger = get_logger()

# Enough for a traceback's last lines in the monitor's event log.
MAX_PING_BODY = 10_000

# Each run's start ping, so its success or fail ping is sent after it: a
# monitor that gets "start" after "success" thinks the job is running again.
# Weak, so a run that never finishes (interrupted) leaves nothing behind.
_start_pings: weakref.WeakValueDictionary[tuple[str, str], threading.Thread] = (
    weakref.WeakValueDictionary()
)


def run_started(job: Job, run: JobRun) -> None:
    """The run's record is saved and its command is about to start.

    The start pings are not waited for: the job starts at once, and the end
    of the run waits for them within the same ``ALERT_TIMEOUT``.
    """
    try:
        starts = (
            [
                _heartbeat(
                    "start", signal_url(job.heartbeat_url, "start"), run.run_id, job
                )
            ]
            if job.heartbeat_url
            else []
        )
        starts += _beats(job, run, "start", _backends(job, _beating()), final=True)
        for delivery in starts:
            _start_pings[run.run_id, delivery.name] = start(delivery)
    # The alerting boundary, as in run_finished: the job runs regardless.
    except Exception as error:
        _log_failure(error, job)


def run_finished(job: Job, run: JobRun, *, final: bool = True) -> None:
    """The run's outcome is recorded and its lock released.

    ``final`` is False for a failed background run whose retry is queued: its
    failure is not told yet, as the retry may still succeed.
    """
    try:
        backends = _backends(job)
        deliveries = [
            *_heartbeat_deliveries(job, run, final),
            *_end_beats(job, run, backends, final),
            *_alert_deliveries(job, run, backends, final),
        ]
        if deliveries:
            deliver(deliveries)
    # The alerting boundary: a bug here or in a backend's constructor must not
    # change the run's answer.
    except Exception as error:
        _log_failure(error, job)


def _log_failure(error: Exception, job: Job) -> None:
    # The traceback may quote options (a webhook URL), so it is logged as a
    # field with every secret removed rather than with exc_info.
    logger.error(
        "alerts_failed",
        error=type(error).__name__,
        traceback=redact("".join(traceback.format_exception(error)), _secrets_of(job)),
    )


def _secrets_of(job: Job) -> list[str]:
    """Every value that may hold a secret: URLs and alert options (tokens are
    always redacted)."""
    options = [
        entry.get("OPTIONS", {})
        for entry in conf.alerts.values()
        if isinstance(entry, Mapping)
    ]
    return [*url_secrets(job.heartbeat_url), *option_secrets([*options, job.alerts])]


def signal_url(url: str, signal: str) -> str:
    """``url`` with ``/<signal>`` added to its path, before any query string."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{signal}"))


def _heartbeat(
    signal: str,
    url: str,
    body: str,
    job: Job,
    after: threading.Thread | None = None,
) -> Delivery:
    return Delivery(
        event="heartbeat",
        name=f"heartbeat-{signal}",
        send=partial(ping, url, body),
        fields={"signal": signal},
        secrets=url_secrets(job.heartbeat_url),
        after=after,
    )


def _heartbeat_deliveries(job: Job, run: JobRun, final: bool) -> list[Delivery]:
    if not job.heartbeat_url:
        return []
    after = _start_pings.pop((run.run_id, "heartbeat-start"), None)
    if run.status != JobRun.Status.SUCCEEDED and not final:
        return []
    if run.status == JobRun.Status.SUCCEEDED:
        return [_heartbeat("success", job.heartbeat_url, run.run_id, job, after)]
    # The error shows in the monitor's event log; tokens are already redacted.
    body = f"{run.run_id}\n{run.error}"[:MAX_PING_BODY]
    return [_heartbeat("fail", signal_url(job.heartbeat_url, "fail"), body, job, after)]


def _beats(
    job: Job,
    run: JobRun,
    signal: HeartbeatSignal,
    backends: list[AlertBackend],
    *,
    final: bool,
) -> list[Delivery]:
    """The heartbeat backends' deliveries of ``signal``; each end waits for
    its own start."""
    heartbeat = Heartbeat(
        signal=signal,
        job=job,
        run_id=run.run_id,
        status=run.status,
        correlation_id=run.correlation_id,
        duration_ms=None if signal == "start" else run.duration_ms,
        attempt=run.attempt,
        final=final,
    )
    deliveries = []
    for backend in backends:
        if not (backend.heartbeats and backend.enabled):
            continue
        name = f"heartbeat-{backend.alias}"
        deliveries.append(
            Delivery(
                event="heartbeat",
                name=name,
                send=partial(backend.beat, heartbeat),
                fields={"alias": backend.alias, "signal": signal},
                secrets=backend.secrets(),
                after=None
                if signal == "start"
                else _start_pings.pop((run.run_id, name), None),
            )
        )
    return deliveries


def _end_beats(
    job: Job, run: JobRun, backends: list[AlertBackend], final: bool
) -> list[Delivery]:
    """Every attempt's end is told, a failed one with a retry to come as well:
    a monitor would otherwise wait for it until its own timeout."""
    signal: HeartbeatSignal = (
        "success" if run.status == JobRun.Status.SUCCEEDED else "fail"
    )
    return _beats(job, run, signal, backends, final=final)


def _alert_deliveries(
    job: Job, run: JobRun, backends: list[AlertBackend], final: bool
) -> list[Delivery]:
    if job.alerts is None or run.status not in (
        JobRun.Status.SUCCEEDED,
        JobRun.Status.FAILED,
        JobRun.Status.TIMED_OUT,
    ):
        return []
    if run.status != JobRun.Status.SUCCEEDED and not final:
        return []
    backends = [backend for backend in backends if backend.alerts and backend.enabled]
    if not backends:
        return []
    kind: AlertKind
    if run.status != JobRun.Status.SUCCEEDED:
        kind = "failure"
    elif _follows_a_failure(run):
        kind = "recovery"
    else:
        return []
    alert = Alert(
        kind=kind,
        job=run.job,
        run_id=run.run_id,
        status=run.status,
        error=run.error,
        correlation_id=run.correlation_id,
        duration_ms=run.duration_ms,
        started_at=run.started_at,
        admin_url=_admin_url(run),
        attempt=run.attempt,
        lock_lost=run.lock_lost,
    )
    return [
        Delivery(
            event="alert",
            name=f"alert-{backend.alias}",
            send=partial(backend.send, alert),
            fields={"alias": backend.alias, "kind": kind},
            secrets=backend.secrets(),
        )
        for backend in backends
    ]


def _backends(job: Job, aliases: list[str] | None = None) -> list[AlertBackend]:
    """The job's channels (of ``aliases``, default all); none with ``"alerts":
    False``."""
    if job.alerts is None:
        return []
    overrides = job.alerts
    backends = []
    for alias in alert_backends.aliases() if aliases is None else aliases:
        try:
            backends.append(
                alert_backends.get(
                    alias,
                    overrides.get(alias),
                    scope=job.name if alias in overrides else "",
                )
            )
        except InvalidAlertBackend as error:
            # Reported by the system checks; the other channels still work.
            logger.error(
                "alert_backend_misconfigured",
                alias=alias,
                error=redact(str(error), _secrets_of(job)),
            )
    return backends


def _beating() -> list[str]:
    """The aliases whose backend class sends heartbeats, found without
    building any: one that cannot be built is reported once, at the run's end."""
    aliases = []
    for alias in alert_backends.aliases():
        try:
            backend_class = import_string(alert_backends.entry(alias)[0])
        except (InvalidAlertBackend, ImportError):
            continue
        if getattr(backend_class, "heartbeats", False) is True:
            aliases.append(alias)
    return aliases


def _follows_a_failure(run: JobRun) -> bool:
    """Whether the job's previous finished run failed (timed out, or was
    abandoned); earlier attempts of this run's own retries do not count, as
    their failures were never told."""
    first = run.retry_of or run.id
    try:
        previous = (
            JobRun.objects.executed()
            .filter(job=run.job, started_at__lte=run.started_at, status__in=FINISHED)
            .exclude(id=first)
            .exclude(retry_of=first)
            .order_by("-started_at", "-id")
            .values_list("status", flat=True)
            .first()
        )
    except DatabaseError:
        logger.exception("alert_history_unavailable")
        return False
    return previous in FAILURES


def _admin_url(run: JobRun) -> str:
    try:
        path = reverse("admin:cronhooks_jobrun_change", args=[run.id])
    except NoReverseMatch:  # the admin is not installed
        return ""
    return conf.base_url + path
