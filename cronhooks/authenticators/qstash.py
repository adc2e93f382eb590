"""Upstash QStash: the ``Upstash-Signature`` header, a JWT signed with HS256.

Verified as Upstash's own SDKs do: with the current signing key, else the
next one (QStash signs with the next key once the keys are rotated), issuer
``Upstash``, subject the URL it called, ``exp`` and ``nbf``, and ``body``
the SHA-256 of the raw body (base64url). Needs the ``qstash`` extra: ``pip
install "django-cronhooks[qstash]"``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import jwt
from django.http import HttpRequest

from cronhooks.authenticators.base import Authenticator, read_body
from cronhooks.conf import conf
from cronhooks.exceptions import AuthenticationFailed

SIGNATURE_HEADER = "Upstash-Signature"
ISSUER = "Upstash"


class QStashAuthenticator(Authenticator):
    """``OPTIONS``: ``CURRENT_SIGNING_KEY`` and ``NEXT_SIGNING_KEY`` (from
    the Upstash console), ``CLOCK_TOLERANCE`` (seconds of leeway on ``exp``
    and ``nbf``, 0)."""

    credential = f"'{SIGNATURE_HEADER}' header"

    def __init__(
        self,
        *,
        CURRENT_SIGNING_KEY: object = "",  # noqa: N803  (OPTIONS keys are upper case)
        NEXT_SIGNING_KEY: object = "",  # noqa: N803
        CLOCK_TOLERANCE: object = 0,  # noqa: N803
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._raw_keys = (CURRENT_SIGNING_KEY, NEXT_SIGNING_KEY)
        self.keys = tuple(key for key in self._raw_keys if isinstance(key, str) and key)
        self.clock_tolerance = CLOCK_TOLERANCE

    def authenticate(self, request: HttpRequest) -> bool:
        token = request.headers.get(SIGNATURE_HEADER)
        if token is None:
            return False
        if not self.keys:
            raise AuthenticationFailed(
                "No QStash signing key is configured on the server."
            )
        claims = self._verified_claims(token)
        # The URL QStash was asked to call: behind a proxy the app sees
        # another scheme or host, so BASE_URL, when set, says the public one.
        path = request.get_full_path()
        url = conf.base_url + path if conf.base_url else request.build_absolute_uri()
        if claims.get("sub") != url:
            raise AuthenticationFailed(
                "Invalid Upstash-Signature: it was made for another URL."
            )
        digest = hashlib.sha256(read_body(request)).digest()
        expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        given = str(claims.get("body", "")).rstrip("=")
        if not hmac.compare_digest(expected, given):
            raise AuthenticationFailed(
                "Invalid Upstash-Signature: it was made for another body."
            )
        return True

    def _verified_claims(self, token: str) -> dict[str, Any]:
        reason = "no key verifies it"
        for key in self.keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=["HS256"],
                    issuer=ISSUER,
                    leeway=self._tolerance(),
                    options={"require": ["iss", "sub", "exp", "nbf", "body"]},
                )
            except jwt.InvalidSignatureError:
                continue  # perhaps the next key's
            except jwt.PyJWTError as error:
                # PyJWT's reasons name claims, never the key.
                reason = str(error)
                break
            return claims
        raise AuthenticationFailed(f"Invalid Upstash-Signature: {reason}.")

    def _tolerance_valid(self) -> bool:
        value = self.clock_tolerance
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    def _tolerance(self) -> int:
        value = self.clock_tolerance
        return value if isinstance(value, int) and self._tolerance_valid() else 0

    def secrets(self) -> Sequence[str]:
        return self.keys

    def check_configuration(self) -> list[str]:
        if not self._tolerance_valid():
            return [
                "OPTIONS['CLOCK_TOLERANCE'] must be a whole number of seconds, "
                "0 or more."
            ]
        return []

    def secret_problems(self) -> list[str]:
        current, _ = self._raw_keys
        if not isinstance(current, str) or not current:
            return [
                "OPTIONS['CURRENT_SIGNING_KEY'] is not set, so it accepts no "
                "request (QSTASH_CURRENT_SIGNING_KEY in the Upstash console)."
            ]
        return []
