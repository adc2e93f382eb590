"""Signed requests: real HMAC-SHA256 signatures, bound to one request, within
a window, each accepted once by a store every process shares."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.db import connection
from django.test import AsyncRequestFactory, Client
from django.utils import timezone

from cronhooks.authenticators import authenticators
from cronhooks.authenticators.signature import (
    EXPIRY_SLACK,
    SIGNATURE_HEADER,
    parse_signature,
    sign,
)
from cronhooks.exceptions import AuthenticationFailed, BodyTooLarge
from cronhooks.models import JobRun, UsedSignature
from cronhooks.redaction import redact
from cronhooks.testing import signature_headers
from tests.conftest import JsonLines

pytestmark = pytest.mark.django_db

SECRET = "signing-secret-0123456789abcdefghijklmnopqrstuvwxyz"
NEXT_SECRET = "next-signing-secret-abcdefghijklmnopqrstuvwxyz0123"
BEARER = {"BACKEND": "cronhooks.authenticators.bearer.BearerAuthenticator"}


def signing(settings: Any, **options: Any) -> None:
    """Accept bearer tokens and signatures, with ``options`` for the latter."""
    entry = {
        "BACKEND": "cronhooks.authenticators.signature.SignatureAuthenticator",
        "OPTIONS": {"SECRETS": [SECRET], **options},
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "AUTHENTICATORS": [BEARER, entry]}


@pytest.fixture(autouse=True)
def _signatures(settings: Any) -> None:
    signing(settings)


def post(client: Client, path: str, headers: dict[str, str], body: bytes = b"") -> Any:
    return client.post(
        path, data=body, content_type="application/json", headers=headers
    )


def test_a_signed_trigger_runs_the_job_without_a_token(client: Client) -> None:
    response = post(client, "/cron/ping", signature_headers("/cron/ping"))

    assert response.status_code == 200, response.json()
    assert JobRun.objects.get().status == "succeeded"


def test_the_signature_covers_the_query_string_and_the_body(client: Client) -> None:
    body = json.dumps({"count": 3}).encode()
    path = "/cron/echo?word=hi"
    response = post(client, path, signature_headers(path, body=body), body)

    assert response.status_code == 200, response.json()
    assert JobRun.objects.get().params == {"count": 3, "word": "hi"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/cron/echo?word=bye", b'{"count": 3}', id="query"),
        pytest.param("POST", "/cron/echo?word=hi", b'{"count": 9}', id="body"),
        pytest.param("POST", "/cron/ping?word=hi", b'{"count": 3}', id="path"),
        pytest.param("GET", "/cron/echo?word=hi", b'{"count": 3}', id="method"),
    ],
)
def test_a_signature_is_worth_nothing_for_another_request(
    client: Client, method: str, path: str, body: bytes
) -> None:
    """Signed for ``method path body``, sent as POST /cron/echo?word=hi."""
    headers = signature_headers(path, method=method, body=body)

    response = post(client, "/cron/echo?word=hi", headers, b'{"count": 3}')

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid signature."
    assert not JobRun.objects.exists()


def test_each_signature_is_accepted_once(client: Client) -> None:
    headers = signature_headers("/cron/ping")

    first = post(client, "/cron/ping", headers)
    again = post(client, "/cron/ping", headers)

    assert first.status_code == 200
    assert again.status_code == 401
    assert "already used" in again.json()["error"]["message"]
    # The replay is refused before authentication: logged, never stored.
    assert JobRun.objects.count() == 1
    assert UsedSignature.objects.count() == 1


def test_a_replay_counts_towards_the_auth_failure_limit(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "RATE_LIMITS": {"AUTH_FAILURES": "1/m"},
    }
    headers = signature_headers("/cron/ping")
    post(client, "/cron/ping", headers)

    assert post(client, "/cron/ping", headers).status_code == 401
    assert post(client, "/cron/ping", {}).status_code == 429


def test_retries_signed_afresh_each_run_the_job(client: Client) -> None:
    now = int(time.time())

    for timestamp in (now, now + 1):
        headers = signature_headers("/cron/ping", timestamp=timestamp)
        assert post(client, "/cron/ping", headers).status_code == 200


@pytest.mark.parametrize(
    ("offset", "status"), [(-301, 401), (-299, 200), (299, 200), (301, 401)]
)
def test_the_timestamp_must_be_within_300_seconds_either_way(
    client: Client, offset: int, status: int
) -> None:
    headers = signature_headers("/cron/ping", timestamp=int(time.time()) + offset)

    response = post(client, "/cron/ping", headers)

    assert response.status_code == status
    if status == 401:
        assert "more than 300 seconds" in response.json()["error"]["message"]


def test_the_tolerance_is_an_option(client: Client, settings: Any) -> None:
    signing(settings, TOLERANCE=30)
    stale = signature_headers("/cron/ping", timestamp=int(time.time()) - 31)

    response = post(client, "/cron/ping", stale)

    assert response.status_code == 401
    assert "more than 30 seconds" in response.json()["error"]["message"]


def test_several_secrets_are_accepted_during_a_rotation(
    client: Client, settings: Any
) -> None:
    signing(settings, SECRETS=[SECRET, NEXT_SECRET])

    now = int(time.time())

    for t, secret in enumerate((SECRET, NEXT_SECRET), start=now):
        headers = signature_headers("/cron/ping", secret=secret, timestamp=t)
        assert post(client, "/cron/ping", headers).status_code == 200
    unknown = signature_headers("/cron/ping", secret="x" * 40)
    assert post(client, "/cron/ping", unknown).status_code == 401


def test_a_request_signed_with_two_secrets_is_still_one_request(
    client: Client,
) -> None:
    t = int(time.time())
    old = sign(SECRET, "POST", "/cron/ping", timestamp=t)
    new = sign(NEXT_SECRET, "POST", "/cron/ping", timestamp=t)
    both = f"{old},{new.split(',')[1]}"

    assert post(client, "/cron/ping", {SIGNATURE_HEADER: both}).status_code == 200
    # Replaying it with the other signature alone is still a replay.
    again = post(client, "/cron/ping", {SIGNATURE_HEADER: old})
    assert again.status_code == 401
    assert "already used" in again.json()["error"]["message"]


@pytest.mark.parametrize(
    "header",
    [
        "",
        "t=abc,v1=" + "0" * 64,
        "v1=" + "0" * 64,
        "t=1700000000",
        "t=1700000000,v1=xyz",
        "t=1700000000,v1=" + "A" * 64,
        "t=1,t=2,v1=" + "0" * 64,
        "t=1700000000,v1=" + "0" * 64 + "," * 1000,
    ],
)
def test_a_malformed_signature_header_is_401(client: Client, header: str) -> None:
    response = post(client, "/cron/ping", {SIGNATURE_HEADER: header})

    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith(
        f"Malformed {SIGNATURE_HEADER} header"
    )
    assert not JobRun.objects.exists()


def test_other_signature_schemes_are_skipped_for_later_versions() -> None:
    digest = "a" * 64

    assert parse_signature(f"t=5, v0=old, v2=new, v1={digest}") == (5, [digest])
    with pytest.raises(AuthenticationFailed):
        parse_signature(f"t=5,v2={digest}")


def test_without_a_secret_a_signature_is_refused(client: Client, settings: Any) -> None:
    signing(settings, SECRETS=[])

    response = post(
        client, "/cron/ping", signature_headers("/cron/ping", secret=SECRET)
    )

    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "No signing secret is configured on the server."
    )


def test_a_request_without_credentials_is_told_every_way_in(client: Client) -> None:
    response = client.post("/cron/ping")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "Missing 'Authorization: Bearer <token>' header or "
        f"'{SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex>' header."
    )


def test_a_valid_signature_beside_a_wrong_token_is_accepted(client: Client) -> None:
    headers = {
        **signature_headers("/cron/ping"),
        "Authorization": "Bearer " + "x" * 40,
    }

    assert post(client, "/cron/ping", headers).status_code == 200


def test_a_signed_body_over_the_limit_is_413_unread(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "MAX_BODY_SIZE": 10}
    signing(settings)
    body = b'{"count": 3, "word": "toolong"}'

    response = post(client, "/cron/echo", signature_headers("/cron/echo"), body)

    assert response.status_code == 413
    assert not JobRun.objects.exists()


def test_a_body_over_djangos_own_limit_is_413(client: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 5
    body = b'{"count": 3}'
    headers = {**signature_headers("/cron/echo", body=body)}

    # Django refuses to read it (RequestDataTooBig) before cronhooks' limit.
    response = post(client, "/cron/echo", headers, body)

    assert response.status_code == 413


def test_a_body_without_a_length_is_still_held_to_the_limit(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "MAX_BODY_SIZE": 10}
    signing(settings)
    body = b'{"count": 3, "word": "toolong"}'
    # Sent chunked, under ASGI: no Content-Length to refuse it by.
    request = AsyncRequestFactory().post(
        "/cron/echo",
        data=body,
        content_type="application/json",
        headers=signature_headers("/cron/echo", body=body),
    )
    del request.META["CONTENT_LENGTH"]
    [_, authenticator] = authenticators()

    with pytest.raises(BodyTooLarge):
        authenticator.authenticate(request)


def test_signature_headers_needs_a_configured_secret(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "AUTHENTICATORS": [BEARER]}

    with pytest.raises(ValueError, match="No SignatureAuthenticator"):
        signature_headers("/cron/ping")
    assert signature_headers("/cron/ping", secret=SECRET, timestamp=5) == {
        SIGNATURE_HEADER: sign(SECRET, "POST", "/cron/ping", timestamp=5)
    }


def test_a_signed_health_request_gets_the_detail(client: Client) -> None:
    response = client.get("/health", headers=signature_headers("/health", method="GET"))

    assert response.status_code == 200
    assert "checks" in response.json()


def test_a_wrong_signature_at_health_is_counted(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "RATE_LIMITS": {"AUTH_FAILURES": "1/m"},
    }
    signing(settings)
    wrong = signature_headers("/health", method="GET", secret="y" * 40)

    assert "checks" not in client.get("/health", headers=wrong).json()
    assert client.get("/health").status_code == 429
    assert any(line["message"] == "health_auth_failed" for line in json_lines())


def test_a_signed_status_request_reads_the_run(client: Client) -> None:
    post(client, "/cron/ping", signature_headers("/cron/ping"))
    run = JobRun.objects.get()
    path = f"/cron/runs/{run.id}"

    response = client.get(path, headers=signature_headers(path, method="GET"))

    assert response.status_code == 200
    assert response.json()["run_id"] == str(run.id)


def test_a_signing_secret_never_reaches_responses_logs_or_history(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    jobs = {
        **settings.CRONHOOKS["JOBS"],
        "leaky": {"callable": "tests.testapp.jobs.leak_signing_secret"},
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}
    signing(settings)

    response = post(client, "/cron/leaky", signature_headers("/cron/leaky"))

    assert response.status_code == 500
    assert "[redacted]" in response.json()["error"]["message"]
    assert SECRET not in response.content.decode()
    assert SECRET not in json.dumps(json_lines())
    assert SECRET not in repr(JobRun.objects.get().__dict__)
    assert redact(f"a {SECRET} b") == "a [redacted] b"


def test_the_signature_is_remembered_until_its_window_closes(client: Client) -> None:
    t = int(time.time())
    post(client, "/cron/ping", signature_headers("/cron/ping", timestamp=t))

    used = UsedSignature.objects.get()
    assert used.expires_at.timestamp() == t + 300 + EXPIRY_SLACK


def test_prune_deletes_expired_signatures_only() -> None:
    now = timezone.now()
    UsedSignature.objects.create(digest="a" * 64, expires_at=now - timedelta(1))
    UsedSignature.objects.create(digest="b" * 64, expires_at=now + timedelta(1))

    call_command("cronhooks", "prune", "--skip-checks")

    assert list(UsedSignature.objects.values_list("digest", flat=True)) == ["b" * 64]


def test_an_unusable_database_store_refuses_with_503(
    client: Client, json_lines: JsonLines
) -> None:
    # Rolled back with the test's transaction.
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE cronhooks_usedsignature")

    response = post(client, "/cron/ping", signature_headers("/cron/ping"))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "backend_unavailable"
    assert any(
        line["message"] == "signature_replay_store_unavailable" for line in json_lines()
    )


# A shared cache as the store


def redis_cache(settings: Any, url: str, **options: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "replay": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1, **options},
        },
    }
    signing(settings, REPLAY_CACHE="replay")


def test_the_store_can_be_a_shared_redis_cache(
    client: Client, settings: Any, redis_url: str
) -> None:
    redis_cache(settings, redis_url)
    headers = signature_headers("/cron/ping")

    assert post(client, "/cron/ping", headers).status_code == 200
    assert post(client, "/cron/ping", headers).status_code == 401
    assert not UsedSignature.objects.exists()
    with redis.Redis.from_url(redis_url) as server:
        [key] = server.keys("*cronhooks:signature:*")
        assert 0 < server.ttl(key) <= 300 + EXPIRY_SLACK + 1
        server.delete(key)


@pytest.mark.parametrize(
    "options", [{}, {"IGNORE_EXCEPTIONS": True}], ids=["raises", "swallows"]
)
def test_an_unreachable_cache_store_refuses_with_503(
    client: Client, settings: Any, options: dict[str, Any]
) -> None:
    # Nothing listens on port 1.
    redis_cache(settings, "redis://127.0.0.1:1/0", **options)

    response = post(client, "/cron/ping", signature_headers("/cron/ping"))

    assert response.status_code == 503
    assert response["Retry-After"]
    assert not JobRun.objects.exists()
