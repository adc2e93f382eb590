"""Bearer-token authentication for the trigger and health views."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

from django.http import HttpRequest

from cronhooks.conf import MIN_TOKEN_LENGTH, conf
from cronhooks.exceptions import AuthenticationFailed

# Query-string names a client might try to slip a token through.
TOKEN_QUERY_NAMES = frozenset({"token", "access_token", "auth", "bearer", "api_key"})
# What an Authorization header can carry: printable ASCII without spaces.
TOKEN_CHARACTERS = re.compile(r"[\x21-\x7e]+")
_BEARER_RE = re.compile(rf"Bearer +({TOKEN_CHARACTERS.pattern})", re.IGNORECASE)


@dataclass(frozen=True)
class TokenProblem:
    """Why a configured token cannot be used; it is named by its position in
    ``CRONHOOKS["TOKENS"]`` (from 1), never shown."""

    position: int
    kind: Literal["not_a_string", "unsendable", "too_short"]
    length: int = 0


def token_problems() -> list[TokenProblem]:
    """Every unusable entry of ``CRONHOOKS["TOKENS"]``: for the system checks
    at deploy time and for /health while serving."""
    entries = conf.raw.get("TOKENS", [])
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list | tuple):
        return []  # a wrong type: reported by the settings check
    problems = []
    for position, token in enumerate(entries, start=1):
        if not isinstance(token, str) or not token:
            problems.append(TokenProblem(position, "not_a_string"))
        elif not TOKEN_CHARACTERS.fullmatch(token):
            problems.append(TokenProblem(position, "unsendable"))
        elif len(token) < MIN_TOKEN_LENGTH:
            problems.append(TokenProblem(position, "too_short", len(token)))
    return problems


def token_matches(candidate: str) -> bool:
    """Compare against every configured token in constant time.

    All tokens are compared, with no early exit, so the time taken does not
    tell which token (or how much of one) matched.
    """
    # Hashing first makes every comparison the same length, so timing does
    # not reveal a token's length either.
    presented = hashlib.sha256(candidate.encode()).digest()
    matched = False
    for token in conf.tokens:
        matched |= hmac.compare_digest(
            presented, hashlib.sha256(token.encode()).digest()
        )
    return matched


def authenticate(request: HttpRequest) -> None:
    """Raise ``AuthenticationFailed`` unless the request carries a valid token."""
    header = request.headers.get("Authorization", "")
    if not header:
        if TOKEN_QUERY_NAMES.intersection(request.GET):
            raise AuthenticationFailed(
                "Tokens are never accepted in the query string; send "
                "'Authorization: Bearer <token>'."
            )
        raise AuthenticationFailed("Missing 'Authorization: Bearer <token>' header.")
    match = _BEARER_RE.fullmatch(header.strip())
    if match is None:
        raise AuthenticationFailed(
            "Malformed Authorization header; expected 'Bearer <token>'."
        )
    if not conf.tokens:
        raise AuthenticationFailed(
            "No token is configured on the server (CRONHOOKS['TOKENS'])."
        )
    if not token_matches(match.group(1)):
        raise AuthenticationFailed("Invalid token.", invalid_token=True)
