"""Authenticators: how each scheduler proves who it is.

``CRONHOOKS["AUTHENTICATORS"]`` is a list of ``{"BACKEND": dotted path,
"OPTIONS": {...}}``; by default the bearer tokens of ``CRONHOOKS["TOKENS"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cronhooks.authenticators.base import Authenticator, InvalidAuthenticator
from cronhooks.backends import BackendHandler
from cronhooks.conf import conf
from cronhooks.log import get_logger
from cronhooks.redaction import option_secrets

__all__ = [
    "Authenticator",
    "InvalidAuthenticator",
    "authenticator_backends",
    "authenticators",
    "authenticator_secrets",
]

ENTRY_KEYS = frozenset({"BACKEND", "OPTIONS"})

logger = get_logger()


class AuthenticatorHandler(BackendHandler[Authenticator]):
    """The entries of ``CRONHOOKS["AUTHENTICATORS"]``, by position ("0", "1"...)."""

    def __init__(self) -> None:
        super().__init__("authenticator", Authenticator, InvalidAuthenticator)

    def aliases(self) -> list[str]:
        return [str(position) for position in range(len(conf.authenticators))]

    def entry(self, alias: str) -> tuple[str, dict[str, Any]]:
        position = int(alias)
        return self.parse_entry(position, conf.authenticators[position])

    @staticmethod
    def parse_entry(position: int, entry: object) -> tuple[str, dict[str, Any]]:
        """An entry's dotted path and options, or ``InvalidAuthenticator``."""
        if (
            not isinstance(entry, Mapping)
            or set(entry) - ENTRY_KEYS
            or not isinstance(entry.get("BACKEND"), str)
            or not isinstance(entry.get("OPTIONS", {}), Mapping)
        ):
            raise InvalidAuthenticator(
                f"CRONHOOKS['AUTHENTICATORS'][{position}] must be a dict with a "
                "'BACKEND' dotted path and optional 'OPTIONS' dict, and nothing else."
            )
        return entry["BACKEND"], dict(entry.get("OPTIONS", {}))

    def build(
        self,
        backend_class: type[Authenticator],
        alias: str,
        options: dict[str, Any],
    ) -> Authenticator:
        # Documented for Authenticator: OPTIONS are keyword arguments.
        return backend_class(**options)


authenticator_backends = AuthenticatorHandler()


def authenticators() -> list[Authenticator]:
    """Every usable configured authenticator, built once per process.

    One that cannot be built is left out, so its callers are refused (fail
    closed), and logged; ``manage.py check`` says why (cronhooks.E042).
    """
    usable = []
    for alias in authenticator_backends.aliases():
        try:
            usable.append(authenticator_backends.get(alias))
        except InvalidAuthenticator as error:
            logger.error(
                "authenticator_misconfigured", position=alias, error=str(error)
            )
    return usable


def authenticator_secrets() -> list[str]:
    """Every secret the configured authenticators hold, for redaction.

    An entry that cannot be built cannot say which of its options are
    secrets: every long string in them is taken to be one.
    """
    found: list[str] = []
    for alias in authenticator_backends.aliases():
        try:
            found.extend(authenticator_backends.get(alias).secrets())
        except InvalidAuthenticator:
            entry = conf.authenticators[int(alias)]
            found.extend(
                option_secrets(
                    entry.get("OPTIONS", {}) if isinstance(entry, Mapping) else {}
                )
            )
    return found
