"""Deliveries in threads: never raising into a run, never holding its answer.

Each delivery runs in a daemon thread with a copy of the caller's structlog
context, so its log lines carry the run's correlation ID. The caller waits
for all of them together until one deadline, then answers regardless: a
delivery still going finishes (or times out in ``requests``) by itself.
"""

from __future__ import annotations

import contextvars
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cronhooks.conf import conf
from cronhooks.log import get_logger
from cronhooks.redaction import redact

logger = get_logger()


class DeliveryRefused(Exception):
    """The channel cannot take the message for a reason its message gives in
    full (no secret in it): logged as a warning, without a traceback."""


@dataclass(frozen=True)
class Delivery:
    """One message to one place; ``send`` raises on failure."""

    event: str  # "alert" or "heartbeat": logged as <event>_sent / _failed
    name: str  # how the thread is named, e.g. "alert-slack" (never the URL)
    send: Callable[[], None]
    # Logged on success and failure (alias, kind, signal...).
    fields: dict[str, str] = field(default_factory=dict)
    # Values that must not reach a log line, even inside a traceback.
    secrets: Sequence[str] = ()
    # Wait for this thread first (a heartbeat's start ping before its end).
    after: threading.Thread | None = None


def start(delivery: Delivery) -> threading.Thread:
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run,
        args=(_deliver, delivery),
        name=f"cronhooks-{delivery.name}",
        daemon=True,
    )
    thread.start()
    return thread


def deliver(deliveries: Iterable[Delivery]) -> list[threading.Thread]:
    """Start every delivery and wait for them together, at most ALERT_TIMEOUT."""
    timeout = conf.alert_timeout
    threads = [start(delivery) for delivery in deliveries]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))
    pending = [thread.name for thread in threads if thread.is_alive()]
    if pending:
        logger.warning("alert_delivery_slow", pending=pending, timeout=timeout)
    return threads


def _deliver(delivery: Delivery) -> None:
    # Imported by the first delivery, not by every process that loads the run
    # path: requests (urllib3, ssl, email...) costs a process about a third
    # of what Django's own HTTP layer does to import.
    import requests

    if delivery.after is not None:
        delivery.after.join(conf.alert_timeout)
    event = delivery.event
    try:
        delivery.send()
    except requests.RequestException as error:
        # Not str(error): requests quotes the URL (or its path) in it.
        response = error.response
        logger.warning(
            f"{event}_failed",
            **delivery.fields,
            error=type(error).__name__,
            status_code=response.status_code if response is not None else None,
        )
    except DeliveryRefused as error:
        logger.warning(
            f"{event}_failed",
            **delivery.fields,
            error=type(error).__name__,
            reason=redact(str(error), delivery.secrets),
        )
    # The delivery boundary: a backend's bug must not reach the run, but it
    # must be visible, with its traceback stripped of secrets.
    except Exception as error:
        logger.error(
            f"{event}_failed",
            **delivery.fields,
            error=type(error).__name__,
            traceback=redact(
                "".join(traceback.format_exception(error)), delivery.secrets
            ),
        )
    else:
        logger.info(f"{event}_sent", **delivery.fields)


def ping(url: str, body: str) -> None:
    """One healthchecks.io-style signal; the body shows in its event log."""
    import requests  # see _deliver

    response = requests.post(url, data=body.encode(), timeout=conf.alert_timeout)
    response.raise_for_status()
