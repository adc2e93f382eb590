"""Correlation context for log lines, and a ready logging configuration.

cronhooks only *binds* context (``correlation_id``, ``job``, ``run_id``) with
structlog's contextvars; the project decides how logs are written. For JSON
lines on stdout, drop ``logging_config()`` into ``LOGGING`` and call
``configure_structlog()`` from settings.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import structlog

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


def logging_config(
    level: str = "INFO", stream: str = "ext://sys.stdout"
) -> dict[str, Any]:
    """A ``LOGGING`` dict: every record as one JSON line on ``stream``.

    Records from structlog and from the stdlib alike carry the bound
    correlation context.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"cronhooks_context": {"()": "cronhooks.log.ContextFilter"}},
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
                "filters": ["cronhooks_context"],
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
