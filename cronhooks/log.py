"""Correlation context for log lines, and a ready logging configuration.

cronhooks only *binds* context (``correlation_id``, ``job``, ``run_id``) with
structlog's contextvars; the project decides how logs are written. For JSON
lines on stdout, drop ``logging_config()`` into ``LOGGING`` and call
``configure_structlog()`` from settings. A project whose ``LOGGING`` gives
cronhooks' records no handler still gets readable lines with those fields on
stderr (``install_default_handler()``). Both handlers carry ``RedactionFilter``,
which a project can put on handlers of its own.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from cronhooks.redaction import holds_secret, redact, redact_value

# Short and plain, so a caller cannot inject line breaks or fake fields into logs.
_CORRELATION_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def get_logger() -> Any:
    """cronhooks' own logger: structlog events written through stdlib logging.

    Independent of the project's structlog configuration, so the events always
    reach the ``cronhooks`` stdlib logger and whatever ``LOGGING`` does with it;
    the bound context and event fields travel as the record's ``extra``.
    """
    return structlog.wrap_logger(
        logging.getLogger("cronhooks"),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.render_to_log_kwargs,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


def correlation_id(incoming: str | None) -> str:
    """The caller's correlation ID if it is safe to log, else a fresh UUID."""
    if incoming and _CORRELATION_ID_RE.fullmatch(incoming):
        return incoming
    return str(uuid.uuid4())


class ContextFilter(logging.Filter):
    """Copy the bound structlog context onto every stdlib log record.

    This is what makes a plain ``logging.getLogger(__name__).info(...)`` inside
    a management command carry the trigger's ``correlation_id``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in structlog.contextvars.get_contextvars().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


# What every LogRecord has; anything else on a record came as ``extra``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
}


class RedactionFilter(logging.Filter):
    """Remove every secret cronhooks knows from a record before it is written.

    For every record a handler formats, Django's own included: a token a
    caller put in a query string reaches ``django.request`` and
    ``django.security.*`` records through the request they carry, whose repr
    shows the query string. The message, each ``extra`` value (as formatters
    render it: itself, ``str`` or ``repr``), the traceback and the stack lose
    what ``cronhooks.redaction.redact`` removes.

    The record is changed in place (before Python 3.12 a filter cannot
    replace it), so handlers after this one see it redacted too, and only
    what held a secret is changed: a traceback without one keeps its
    ``exc_info`` for handlers that want the exception itself (Sentry's).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_message(record)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES:
                redacted = _redacted_extra(value)
                if redacted is not value:
                    setattr(record, name, redacted)
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if redact(text) != text:
                # Formatters format exc_info themselves, ignoring exc_text.
                record.exc_info, record.exc_text = None, redact(text)
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_message(record: logging.LogRecord) -> None:
    if isinstance(record.msg, Mapping):
        # An event dict for structlog's ProcessorFormatter: it stays a dict.
        record.msg = redact_value(record.msg)
        return
    try:
        message = record.getMessage()
    # A call whose arguments do not fit its format: logging reports it when
    # formatting, quoting msg and args, so both are redacted for that.
    except (TypeError, ValueError, KeyError):
        record.msg = redact(str(record.msg))
        record.args = tuple(map(redact_value, record.args or ()))
        return
    if redact(message) != message:
        record.msg, record.args = redact(message), ()


def _redacted_extra(value: object) -> object:
    """``value`` itself when it holds no secret, else what to write instead."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str | Mapping | list | tuple):
        return redact_value(value) if holds_secret(value) else value
    for render in (str, repr):
        text = render(value)
        if redact(text) != text:
            return redact(text)
    return value


def logging_config(
    level: str = "INFO", stream: str = "ext://sys.stdout"
) -> dict[str, Any]:
    """A ``LOGGING`` dict: every record as one JSON line on ``stream``.

    Records from structlog and from the stdlib alike carry the bound
    correlation context, and lose every secret (``RedactionFilter``).
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "cronhooks_context": {"()": "cronhooks.log.ContextFilter"},
            "cronhooks_redaction": {"()": "cronhooks.log.RedactionFilter"},
        },
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "timestamp", "levelname": "level"},
            }
        },
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "stream": stream,
                "formatter": "json",
                # Redaction last: the context fields it copies are redacted too.
                "filters": ["cronhooks_context", "cronhooks_redaction"],
            }
        },
        "root": {"handlers": ["json"], "level": level},
        # Django's defaults give these loggers handlers of their own (plain
        # text, and twice over with DEBUG); send them through the JSON one.
        "loggers": {
            name: {"handlers": [], "level": level, "propagate": True}
            for name in ("django", "django.server")
        },
    }


def readable_formatter() -> logging.Formatter:
    """One line per record: time, level, event, logger, then every field.

    structlog renders the stdlib records, taking the event's fields from the
    record's ``extra``, where ``get_logger()`` puts them.
    """
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _redacted_traceback,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Not rich's traceback, which would print every frame's locals
            # (a password, a webhook URL) past the redaction.
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            ),
        ],
    )


def _redacted_traceback(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The traceback RedactionFilter redacted (as exc_text, without
    exc_info), which ProcessorFormatter would otherwise drop."""
    record = event.get("_record")
    if record is not None and record.exc_text and not record.exc_info:
        event["exception"] = record.exc_text
    return event


def install_default_handler() -> bool:
    """Write cronhooks' records to stderr when nothing else would.

    Without a handler on ``cronhooks`` or the root, Python's last resort would
    print bare event words (``run_started``) and only from warnings up. Like
    Django's own default for the ``django`` logger, this is only a default:
    any handler the project's ``LOGGING`` gives ``cronhooks`` or the root
    replaces it. Called from ``AppConfig.ready()``, after ``LOGGING`` is
    applied; returns whether it installed the handler.
    """
    logger = logging.getLogger("cronhooks")
    if logger.hasHandlers():
        return False
    handler = logging.StreamHandler()
    handler.setFormatter(readable_formatter())
    handler.addFilter(RedactionFilter())
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return True


def configure_structlog() -> None:
    """Route structlog through the stdlib, so one handler writes every line.

    ``render_to_log_kwargs`` hands the event dict to ``logging`` as ``extra``,
    which python-json-logger then writes as JSON fields.
    """
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
