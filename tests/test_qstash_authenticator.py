"""Upstash QStash: Upstash-Signature JWTs signed here with HS256, as QStash
signs them, with the current and the next signing key."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import jwt
import pytest
from django.test import Client

from cronhooks.authenticators.qstash import QStashAuthenticator
from cronhooks.models import JobRun

pytestmark = pytest.mark.django_db

CURRENT = "sig_current0123456789abcdefghijkl"
NEXT = "sig_next0123456789abcdefghijklmnop"
URL = "http://testserver/cron/echo?word=hi"
BODY = b'{"count": 3}'


@pytest.fixture(autouse=True)
def _qstash(settings: Any) -> None:
    entry = {
        "BACKEND": "cronhooks.authenticators.qstash.QStashAuthenticator",
        "OPTIONS": {"CURRENT_SIGNING_KEY": CURRENT, "NEXT_SIGNING_KEY": NEXT},
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "AUTHENTICATORS": [entry]}


def body_hash(body: bytes) -> str:
    digest = hashlib.sha256(body).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def upstash_signature(key: str = CURRENT, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "Upstash",
        "sub": URL,
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "jti": "jwt_123",
        "body": body_hash(BODY),
        **claims,
    }
    return jwt.encode(payload, key, algorithm="HS256")


def deliver(client: Client, signature: str, body: bytes = BODY) -> Any:
    return client.post(
        "/cron/echo?word=hi",
        data=body,
        content_type="application/json",
        headers={"Upstash-Signature": signature},
    )


@pytest.mark.parametrize("key", [CURRENT, NEXT], ids=["current", "next"])
def test_a_delivery_signed_with_either_key_runs_the_job(
    client: Client, key: str
) -> None:
    response = deliver(client, upstash_signature(key))

    assert response.status_code == 200, response.json()
    assert JobRun.objects.get().params == {"count": 3, "word": "hi"}


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (lambda: upstash_signature("sig_other0123456789abcdefghijklmn"), "no key"),
        (lambda: upstash_signature(iss="Someone"), "issuer"),
        (lambda: upstash_signature(exp=int(time.time()) - 10), "expired"),
        (lambda: upstash_signature(nbf=int(time.time()) + 60), "not yet valid"),
        (lambda: upstash_signature(sub="https://app.example.org/cron/x"), "URL"),
        (lambda: upstash_signature(body=body_hash(b"{}")), "body"),
        (lambda: "not-a-jwt", "Invalid Upstash-Signature"),
    ],
    ids=["key", "issuer", "expired", "early", "url", "body", "garbage"],
)
def test_a_delivery_qstash_did_not_sign_is_401(
    client: Client, signature: Any, reason: str
) -> None:
    response = deliver(client, signature())

    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert reason.lower() in message.lower()
    assert CURRENT not in response.content.decode()
    assert not JobRun.objects.exists()


def test_the_public_url_comes_from_BASE_URL_behind_a_proxy(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "BASE_URL": "https://app.example.org"}
    signature = upstash_signature(sub="https://app.example.org/cron/echo?word=hi")

    assert deliver(client, signature).status_code == 200


def test_a_request_without_the_header_is_told_to_send_it(client: Client) -> None:
    response = client.post("/cron/echo")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Missing 'Upstash-Signature' header."


def test_without_a_key_deliveries_are_refused(client: Client, settings: Any) -> None:
    entry = {"BACKEND": "cronhooks.authenticators.qstash.QStashAuthenticator"}
    settings.CRONHOOKS = {**settings.CRONHOOKS, "AUTHENTICATORS": [entry]}

    response = deliver(client, upstash_signature())

    assert response.status_code == 401
    assert "No QStash signing key" in response.json()["error"]["message"]


def test_its_options_are_checked_and_its_keys_redacted() -> None:
    assert QStashAuthenticator(CLOCK_TOLERANCE=-1).check_configuration()
    assert QStashAuthenticator().secret_problems()
    authenticator = QStashAuthenticator(CURRENT_SIGNING_KEY=CURRENT, CLOCK_TOLERANCE=5)
    assert authenticator.check_configuration() == []
    assert authenticator.secret_problems() == []
    assert list(authenticator.secrets()) == [CURRENT]
