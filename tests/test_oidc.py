"""Google OIDC: ID tokens signed with a locally generated RSA key, verified
against certificates served by a local HTTP server, as Google's would be."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.test import Client
from google.auth import crypt
from google.auth import jwt as google_jwt

from cronhooks.authenticators.oidc import GoogleOIDCAuthenticator
from cronhooks.models import JobRun
from tests.settings import TOKEN

pytestmark = pytest.mark.django_db

AUDIENCE = "https://app.example.org/cron/ping"
ACCOUNT = "scheduler@my-project.iam.gserviceaccount.com"
KID = "local-key-1"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local-google")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class Certificates:
    """Google's certificate endpoint, on 127.0.0.1: {kid: PEM certificate}."""

    def __init__(self, certs: dict[str, str]) -> None:
        self.certs = certs
        self.status = 200
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.fetches += 1
                body = json.dumps(outer.certs).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture
def certs(key: rsa.RSAPrivateKey) -> Iterator[Certificates]:
    server = Certificates({KID: certificate(key)})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def google(settings: Any, certs: Certificates) -> None:
    entry = {
        "BACKEND": "cronhooks.authenticators.oidc.GoogleOIDCAuthenticator",
        "OPTIONS": {
            "AUDIENCE": AUDIENCE,
            "SERVICE_ACCOUNTS": [ACCOUNT],
            "CERTS_URL": certs.url,
        },
    }
    bearer = {"BACKEND": "cronhooks.authenticators.bearer.BearerAuthenticator"}
    settings.CRONHOOKS = {**settings.CRONHOOKS, "AUTHENTICATORS": [entry, bearer]}


def id_token(key: rsa.RSAPrivateKey, kid: str = KID, **claims: Any) -> str:
    """An ID token as Google signs one for Cloud Scheduler."""
    now = int(time.time())
    payload = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "sub": "1234567890",
        "email": ACCOUNT,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
        **claims,
    }
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = crypt.RSASigner.from_string(pem, key_id=kid)  # type: ignore[no-untyped-call]
    token: bytes = google_jwt.encode(signer, payload)  # type: ignore[no-untyped-call]
    return token.decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.usefixtures("google")
def test_cloud_schedulers_id_token_runs_the_job(
    client: Client, key: rsa.RSAPrivateKey
) -> None:
    response = client.post("/cron/ping", headers=bearer(id_token(key)))

    assert response.status_code == 200, response.json()
    assert JobRun.objects.get().status == "succeeded"


@pytest.mark.usefixtures("google")
def test_the_certificates_are_fetched_once_for_many_tokens(
    client: Client, key: rsa.RSAPrivateKey, certs: Certificates
) -> None:
    for _ in range(3):
        assert client.post("/cron/ping", headers=bearer(id_token(key))).status_code
    assert certs.fetches == 1


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "https://elsewhere.example.org/"}, "audience"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
        ({"iss": "https://evil.example.org"}, "wrong issuer"),
        ({"email": "intruder@other.iam.gserviceaccount.com"}, "not allowed"),
        ({"email_verified": False}, "not allowed"),
    ],
    ids=["audience", "expired", "issuer", "account", "unverified-email"],
)
@pytest.mark.usefixtures("google")
def test_a_token_google_made_for_someone_else_is_401(
    client: Client, key: rsa.RSAPrivateKey, claims: dict[str, Any], reason: str
) -> None:
    token = id_token(key, **claims)

    response = client.post("/cron/ping", headers=bearer(token))

    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert reason in message.lower()
    assert token not in response.content.decode()
    assert not JobRun.objects.exists()


@pytest.mark.usefixtures("google")
def test_a_token_signed_by_another_key_is_401(client: Client) -> None:
    response = client.post("/cron/ping", headers=bearer(id_token(rsa_key())))

    assert response.status_code == 401
    assert "Invalid Google ID token" in response.json()["error"]["message"]


@pytest.mark.usefixtures("google")
def test_a_bearer_token_still_works_beside_it(client: Client) -> None:
    assert client.post("/cron/ping", headers=bearer(TOKEN)).status_code == 200


@pytest.mark.usefixtures("google")
def test_unreachable_certificates_refuse_with_503(
    client: Client, key: rsa.RSAPrivateKey, certs: Certificates
) -> None:
    certs.status = 500

    response = client.post("/cron/ping", headers=bearer(id_token(key)))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "backend_unavailable"


def test_without_audience_or_accounts_tokens_are_refused(
    client: Client, settings: Any, key: rsa.RSAPrivateKey
) -> None:
    entry = {"BACKEND": "cronhooks.authenticators.oidc.GoogleOIDCAuthenticator"}
    settings.CRONHOOKS = {**settings.CRONHOOKS, "AUTHENTICATORS": [entry]}

    response = client.post("/cron/ping", headers=bearer(id_token(key)))

    assert response.status_code == 401
    assert "not configured" in response.json()["error"]["message"]


def test_its_options_are_checked() -> None:
    assert (
        GoogleOIDCAuthenticator(
            AUDIENCE=[AUDIENCE], SERVICE_ACCOUNTS=ACCOUNT
        ).check_configuration()
        == []
    )
    problems = GoogleOIDCAuthenticator(
        AUDIENCE=5, CERTS_URL="http://certs.example.org", CLOCK_SKEW=-1
    ).check_configuration()
    assert [problem.split("]")[0] for problem in problems] == [
        "OPTIONS['AUDIENCE'",
        "OPTIONS['SERVICE_ACCOUNTS'",
        "OPTIONS['CERTS_URL'",
        "OPTIONS['CLOCK_SKEW'",
    ]
