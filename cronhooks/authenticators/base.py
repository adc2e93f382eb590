"""The authenticator interface: how a caller proves who it is.

``CRONHOOKS["AUTHENTICATORS"]`` lists them, each ``{"BACKEND": dotted path,
"OPTIONS": {...}}``; a request is authenticated when any of them accepts it
(``cronhooks.auth``). Each looks for its own kind of credential and says one
of three things: it accepts the request, the request carries none of its
credentials (another one may accept it), or it carries one that is invalid
(``AuthenticationFailed``, whose message must never quote a secret).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.http import HttpRequest

from cronhooks.conf import conf
from cronhooks.exceptions import BodyTooLarge

# What a header can carry: printable ASCII without spaces.
SENDABLE = re.compile(r"[\x21-\x7e]+")


class InvalidAuthenticator(ImproperlyConfigured):
    """An ``AUTHENTICATORS`` entry that cannot be used."""


@dataclass(frozen=True)
class SecretProblem:
    """Why a configured secret cannot be used; it is named by its position
    in its list (from 1), never shown."""

    position: int
    kind: Literal["not_a_string", "unsendable", "too_short"]
    length: int = 0


def secret_problems(
    entries: object, *, min_length: int, sendable: bool = True
) -> list[SecretProblem]:
    """Every unusable entry of a list of secrets (one str is a list of one).

    ``sendable``: the secret travels in a header as it is (a bearer token),
    so it must be printable ASCII without spaces; a signing secret never
    travels, but one with spaces or a newline is almost always a copy mistake.
    """
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list | tuple):
        return []  # a wrong type: reported by the settings check
    problems = []
    for position, secret in enumerate(entries, start=1):
        if not isinstance(secret, str) or not secret:
            problems.append(SecretProblem(position, "not_a_string"))
        elif sendable and not SENDABLE.fullmatch(secret):
            problems.append(SecretProblem(position, "unsendable"))
        elif len(secret) < min_length:
            problems.append(SecretProblem(position, "too_short", len(secret)))
    return problems


def usable_secrets(entries: object) -> tuple[str, ...]:
    """The non-empty strings of a list of secrets (or of one str)."""
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list | tuple):
        return ()
    return tuple(secret for secret in entries if isinstance(secret, str) and secret)


class Authenticator(ABC):
    """Base class of authenticators, listed in ``CRONHOOKS["AUTHENTICATORS"]``.

    ``OPTIONS`` are passed to ``__init__`` as keyword arguments; an option
    the class does not take is a ``TypeError``, reported by the system checks
    (``cronhooks.E042``). One instance serves every request of the process,
    in any thread: keep no per-request state on it.

    To add one (Google OIDC, QStash...), subclass this in a module of its
    own and list it; nothing else needs to change.
    """

    #: The credential, as the 401 for a request without any names it:
    #: "'Authorization: Bearer <token>' header".
    credential: ClassVar[str] = "credentials"
    #: Callers it accepts may trigger jobs with GET too (Vercel Cron does).
    allows_get_triggers: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"unknown options: {', '.join(sorted(options))}")

    def __repr__(self) -> str:
        # Options hold secrets: never show them.
        return f"<{type(self).__name__}>"

    @abstractmethod
    def authenticate(self, request: HttpRequest) -> bool:
        """True when the request carries a valid credential of this kind,
        False when it carries none of this kind.

        Raises ``AuthenticationFailed`` when it carries one that is not
        valid (malformed, wrong, expired, replayed), and may raise another
        ``TriggerRejected`` (``BackendUnavailable``) when it cannot tell.
        """

    def secrets(self) -> Sequence[str]:
        """Every secret it holds: redacted from whatever cronhooks writes."""
        return ()

    def check_configuration(self) -> list[str]:
        """Problems with the options, for the system checks (E043)."""
        return []

    def secret_problems(self) -> list[str]:
        """Missing or weak secrets, for the system checks (E044).

        Kept apart from ``check_configuration``: commands that serve no
        request (``cronhooks list`` on a CI runner) skip these.
        """
        return []


def describe_problems(
    problems: Iterable[SecretProblem], where: str, min_length: int
) -> list[str]:
    """``secret_problems`` as check messages, naming each secret's position."""
    messages = []
    for problem in problems:
        name = f"{where} #{problem.position}"
        if problem.kind == "not_a_string":
            messages.append(f"{name} is not a non-empty string.")
        elif problem.kind == "unsendable":
            messages.append(
                f"{name} contains spaces, control or non-ASCII characters "
                "(a trailing newline from a file?)."
            )
        else:
            messages.append(
                f"{name} is {problem.length} characters; at least {min_length} "
                "are required."
            )
    return messages


def read_body(request: HttpRequest) -> bytes:
    """The raw body, within ``MAX_BODY_SIZE``: it must be read to be verified."""
    limit = conf.max_body_size
    declared = request.META.get("CONTENT_LENGTH") or "0"
    too_large = BodyTooLarge(f"The body is larger than {limit} bytes.")
    if (
        declared.isascii()
        and declared.isdigit()
        and (len(declared) > len(str(limit)) or int(declared) > limit)
    ):
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(body) > limit:
        raise too_large
    return body
