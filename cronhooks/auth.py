"""Authentication of the trigger, status and health views: the one entry
the views call; each way of proving who one is lives in ``authenticators/``.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpRequest

from cronhooks.authenticators import Authenticator, authenticators
from cronhooks.authenticators.base import SENDABLE as TOKEN_CHARACTERS
from cronhooks.authenticators.base import SecretProblem, secret_problems
from cronhooks.authenticators.bearer import (
    BearerAuthenticator,
    SecretBearerAuthenticator,
    matches_any,
)
from cronhooks.conf import MIN_TOKEN_LENGTH, conf
from cronhooks.exceptions import AuthenticationFailed

__all__ = [
    "TOKEN_CHARACTERS",
    "TOKEN_QUERY_NAMES",
    "TokenProblem",
    "authenticate",
    "reads_tokens",
    "token_matches",
    "token_problems",
    "trigger_methods",
]

# Query-string names a client might try to slip a token through.
TOKEN_QUERY_NAMES = frozenset({"token", "access_token", "auth", "bearer", "api_key"})

TokenProblem = SecretProblem


def token_problems() -> list[TokenProblem]:
    """Every unusable entry of ``CRONHOOKS["TOKENS"]``: for the system checks
    at deploy time and for /health while serving."""
    return secret_problems(conf.raw.get("TOKENS", []), min_length=MIN_TOKEN_LENGTH)


def token_matches(candidate: str) -> bool:
    """Whether ``candidate`` is one of ``CRONHOOKS["TOKENS"]``, in constant time."""
    return matches_any(candidate, conf.tokens)


def reads_tokens(configured: Iterable[Authenticator] | None = None) -> bool:
    """Whether an authenticator accepts ``CRONHOOKS["TOKENS"]`` (the default)."""
    configured = authenticators() if configured is None else configured
    return any(
        isinstance(a, BearerAuthenticator)
        and not isinstance(a, SecretBearerAuthenticator)
        for a in configured
    )


def authenticate(request: HttpRequest) -> Authenticator:
    """The authenticator that accepts the request.

    Every configured authenticator is asked, in order, until one accepts.
    Otherwise raises ``AuthenticationFailed``: the first invalid credential's
    reason, or, when none was presented, what to send.
    """
    configured = authenticators()
    failure: AuthenticationFailed | None = None
    for authenticator in configured:
        try:
            if authenticator.authenticate(request):
                return authenticator
        except AuthenticationFailed as error:
            failure = failure or error
    if failure is not None:
        failure.presented = True
        raise failure
    expected = " or ".join(dict.fromkeys(a.credential for a in configured))
    if not expected:
        raise AuthenticationFailed(
            "No authenticator is configured on the server "
            "(CRONHOOKS['AUTHENTICATORS'])."
        )
    if TOKEN_QUERY_NAMES.intersection(request.GET):
        raise AuthenticationFailed(
            f"Tokens are never accepted in the query string; send {expected}."
        )
    raise AuthenticationFailed(f"Missing {expected}.")


def trigger_methods(accepted_by: Authenticator | None) -> tuple[str, ...]:
    """The methods a trigger may use: POST, and GET for a caller accepted by
    an authenticator that allows it (Vercel Cron). A caller not yet
    authenticated is told every method some authenticator allows."""
    candidates = authenticators() if accepted_by is None else [accepted_by]
    if any(a.allows_get_triggers for a in candidates):
        return ("POST", "GET")
    return ("POST",)
