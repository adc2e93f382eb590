"""``Authorization: Bearer <token>``: the tokens of ``CRONHOOKS["TOKENS"]``."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from django.http import HttpRequest

from cronhooks.authenticators.base import (
    SENDABLE,
    Authenticator,
    describe_problems,
    secret_problems,
    usable_secrets,
)
from cronhooks.conf import MIN_TOKEN_LENGTH, conf
from cronhooks.exceptions import AuthenticationFailed

BEARER_RE = re.compile(rf"Bearer +({SENDABLE.pattern})", re.IGNORECASE)


def matches_any(candidate: str, secrets: Iterable[str]) -> bool:
    """Compare against every secret in constant time.

    All are compared, with no early exit, so the time taken does not tell
    which secret (or how much of one) matched.
    """
    # Hashing first makes every comparison the same length, so timing does
    # not reveal a secret's length either.
    presented = hashlib.sha256(candidate.encode()).digest()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(
            presented, hashlib.sha256(secret.encode()).digest()
        )
    return matched


def bearer_token(request: HttpRequest) -> str | None:
    """The token of the Authorization header; None without the header.

    Raises ``AuthenticationFailed`` for a header that is not ``Bearer
    <token>``.
    """
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    match = BEARER_RE.fullmatch(header.strip())
    if match is None:
        raise AuthenticationFailed(
            "Malformed Authorization header; expected 'Bearer <token>'."
        )
    return match.group(1)


class BearerAuthenticator(Authenticator):
    """The tokens of ``CRONHOOKS["TOKENS"]``, several at once for rotation.

    The default authenticator: a project that sets only ``TOKENS`` uses it.
    """

    credential = "'Authorization: Bearer <token>' header"
    #: Where its secrets are configured, for messages.
    setting_name: ClassVar[str] = "CRONHOOKS['TOKENS']"
    min_secret_length: ClassVar[int] = MIN_TOKEN_LENGTH

    def tokens(self) -> tuple[str, ...]:
        # Read on every request, so override_settings and a rotated TOKENS
        # apply at once.
        return conf.tokens

    def authenticate(self, request: HttpRequest) -> bool:
        token = bearer_token(request)
        if token is None:
            return False
        tokens = self.tokens()
        if not tokens:
            raise AuthenticationFailed(
                f"No token is configured on the server ({self.setting_name})."
            )
        if not matches_any(token, tokens):
            raise AuthenticationFailed("Invalid token.", invalid_token=True)
        return True

    def secrets(self) -> Sequence[str]:
        return self.tokens()


class SecretBearerAuthenticator(BearerAuthenticator):
    """A bearer authenticator with secrets of its own (``SECRETS``), rather
    than ``CRONHOOKS["TOKENS"]``."""

    setting_name = "OPTIONS['SECRETS']"

    def __init__(self, *, SECRETS: object = (), **options: Any) -> None:  # noqa: N803
        super().__init__(**options)
        self._raw_secrets = SECRETS
        self._secrets = usable_secrets(SECRETS)

    def tokens(self) -> tuple[str, ...]:
        return self._secrets

    def check_configuration(self) -> list[str]:
        if not isinstance(self._raw_secrets, list | tuple | str):
            return [
                f"OPTIONS['SECRETS'] is a {type(self._raw_secrets).__name__}; it "
                "takes a list of str (or one str)."
            ]
        return []

    def secret_problems(self) -> list[str]:
        if not self._secrets and not secret_problems(
            self._raw_secrets, min_length=self.min_secret_length
        ):
            return ["OPTIONS['SECRETS'] is empty, so it accepts no request."]
        return describe_problems(
            secret_problems(self._raw_secrets, min_length=self.min_secret_length),
            "Secret",
            self.min_secret_length,
        )
