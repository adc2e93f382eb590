"""Helpers for testing your own jobs through the real views.

from cronhooks.testing import trigger

def test_import_runs(client, db):
    response = trigger(client, "mop-recent", query={"delta": "30"})
    assert response.status_code == 200, response.json()

A background job answers 202: see the README's "Testing your own jobs".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.test import Client
from django.urls import reverse

from cronhooks.conf import conf

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse


def auth_headers(token: str | None = None) -> dict[str, str]:
    """Request headers carrying ``token``, or the first configured token."""
    if token is None:
        if not conf.tokens:
            raise ValueError("No token is configured in CRONHOOKS['TOKENS'].")
        token = conf.tokens[0]
    return {"Authorization": f"Bearer {token}"}


def signature_headers(
    path: str,
    *,
    method: str = "POST",
    body: bytes = b"",
    secret: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """An ``X-Cronhooks-Signature`` header for one request, signed with
    ``secret`` or the first secret of the first configured
    ``SignatureAuthenticator``. ``path`` includes the query string."""
    from cronhooks.authenticators import authenticators
    from cronhooks.authenticators.signature import (
        SIGNATURE_HEADER,
        SignatureAuthenticator,
        sign,
    )

    if secret is None:
        configured = [
            a for a in authenticators() if isinstance(a, SignatureAuthenticator)
        ]
        if not configured or not configured[0].secrets():
            raise ValueError("No SignatureAuthenticator with SECRETS is configured.")
        secret = configured[0].secrets()[0]
    value = sign(secret, method, path, body, timestamp=timestamp)
    return {SIGNATURE_HEADER: value}


def trigger(
    client: Client,
    job: str,
    *,
    query: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> TestResponse:
    """POST to the job's endpoint as a scheduler would."""
    url = reverse("cronhooks:trigger", args=[job])
    all_headers = {**auth_headers(token), **(headers or {})}
    return client.post(
        url,
        data=json.dumps(body) if body is not None else b"",
        content_type="application/json",
        query_params=dict(query or {}),
        headers=all_headers,
    )
