"""Google OIDC: ``Authorization: Bearer <ID token>`` from Cloud Scheduler,
Cloud Tasks or a Pub/Sub push subscription.

The token is verified by google-auth (signature against Google's published
certificates, expiry, audience), then its issuer and service account are
checked as ``id_token.verify_oauth2_token`` does, with the certificates'
address an option so that they can be served locally in tests. Needs the
``google`` extra: ``pip install "django-cronhooks[google]"``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import google.auth.exceptions
import google.auth.transport
import google.auth.transport.requests
import requests
from django.http import HttpRequest
from google.oauth2 import id_token

from cronhooks.authenticators.base import Authenticator
from cronhooks.authenticators.bearer import bearer_token
from cronhooks.exceptions import AuthenticationFailed, BackendUnavailable
from cronhooks.log import get_logger

logger = get_logger()

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
# Header, claims, signature: what tells an ID token from an opaque token.
JWT_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Google publishes each key days before it signs with it: an hour-old copy
# of the certificates verifies every current token.
CERTS_MAX_AGE = 3600
CERTS_TIMEOUT = 5


class CachedCertificates(google.auth.transport.Request):
    """google-auth's transport, keeping the certificates for an hour.

    ``id_token.verify_token`` fetches them on every call; Google's own
    documentation suggests a caching HTTP session (CacheControl) instead,
    one more dependency for what these few lines do.
    """

    def __init__(self) -> None:
        self._transport = google.auth.transport.requests.Request(requests.Session())
        self._cached: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def __call__(  # type: ignore[override]
        self, url: str, method: str = "GET", **kwargs: Any
    ) -> Any:
        now = time.monotonic()
        with self._lock:
            cached = self._cached.get(url)
        if cached is not None and now - cached[0] < CERTS_MAX_AGE:
            return cached[1]
        response = self._transport(url, method=method, timeout=CERTS_TIMEOUT, **kwargs)
        if response.status == 200:
            with self._lock:
                self._cached[url] = (now, response)
        return response


class GoogleOIDCAuthenticator(Authenticator):
    """``OPTIONS``: ``AUDIENCE`` (the audience the scheduler puts in its
    tokens: by default Cloud Scheduler uses the target URL; a list for
    several), ``SERVICE_ACCOUNTS`` (the emails allowed to call),
    ``CERTS_URL`` (Google's certificates) and ``CLOCK_SKEW`` (seconds of
    leeway on the token's times, 10)."""

    credential = "'Authorization: Bearer <Google ID token>' header"

    def __init__(
        self,
        *,
        AUDIENCE: object = "",  # noqa: N803  (OPTIONS keys are upper case)
        SERVICE_ACCOUNTS: object = (),  # noqa: N803
        CERTS_URL: object = GOOGLE_CERTS_URL,  # noqa: N803
        CLOCK_SKEW: object = 10,  # noqa: N803
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.audience = [AUDIENCE] if isinstance(AUDIENCE, str) else AUDIENCE
        self.service_accounts = (
            [SERVICE_ACCOUNTS]
            if isinstance(SERVICE_ACCOUNTS, str)
            else SERVICE_ACCOUNTS
        )
        self.certs_url = CERTS_URL
        self.clock_skew = CLOCK_SKEW
        self._certificates = CachedCertificates()

    def authenticate(self, request: HttpRequest) -> bool:
        token = bearer_token(request)
        if token is None or not JWT_RE.fullmatch(token):
            return False  # not an ID token: another authenticator's
        audience = [a for a in self._list(self.audience) if a]
        allowed = set(self._list(self.service_accounts))
        if not audience or not allowed:
            raise AuthenticationFailed(
                "Google ID tokens are not configured on the server "
                "(AUDIENCE and SERVICE_ACCOUNTS)."
            )
        try:
            claims = id_token.verify_token(
                token,
                self._certificates,
                audience=audience,
                certs_url=str(self.certs_url),
                clock_skew_in_seconds=self._skew(),
            )
        except google.auth.exceptions.TransportError:
            logger.warning("google_certs_unavailable", exc_info=True)
            raise BackendUnavailable(
                "Google's certificates could not be fetched."
            ) from None
        except (ValueError, google.auth.exceptions.GoogleAuthError) as error:
            # google-auth's reasons name claims and times, never the token.
            raise AuthenticationFailed(f"Invalid Google ID token: {error}") from None
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise AuthenticationFailed("Invalid Google ID token: wrong issuer.")
        if claims.get("email_verified") is not True or claims.get("email") not in (
            allowed
        ):
            raise AuthenticationFailed(
                "The Google ID token's service account is not allowed."
            )
        return True

    @staticmethod
    def _list(value: object) -> list[str]:
        if not isinstance(value, list | tuple):
            return []
        return [item for item in value if isinstance(item, str)]

    def _skew_valid(self) -> bool:
        skew = self.clock_skew
        return isinstance(skew, int) and not isinstance(skew, bool) and skew >= 0

    def _skew(self) -> int:
        skew = self.clock_skew
        return skew if isinstance(skew, int) and self._skew_valid() else 10

    def secrets(self) -> Sequence[str]:
        return ()  # nothing secret: the certificates are public

    def check_configuration(self) -> list[str]:
        problems = []
        if not [a for a in self._list(self.audience) if a]:
            problems.append(
                "OPTIONS['AUDIENCE'] is not set: a token Google made for any "
                "other service would do. Set the audience your scheduler uses "
                "(Cloud Scheduler's default: the target URL)."
            )
        if not self._list(self.service_accounts):
            problems.append(
                "OPTIONS['SERVICE_ACCOUNTS'] is empty: name the service "
                "account emails allowed to call."
            )
        if not isinstance(self.certs_url, str) or not self.certs_url.startswith(
            ("https://", "http://127.0.0.1", "http://localhost")
        ):
            problems.append("OPTIONS['CERTS_URL'] must be an https:// URL.")
        if not self._skew_valid():
            problems.append(
                "OPTIONS['CLOCK_SKEW'] must be a whole number of seconds, 0 or more."
            )
        return problems
