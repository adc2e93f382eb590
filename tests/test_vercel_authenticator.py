"""Vercel Cron: GET with the CRON_SECRET, opted into; GET stays 405 otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from cronhooks.models import JobRun
from tests.settings import TOKEN

pytestmark = pytest.mark.django_db

CRON_SECRET = "vercel-cron-secret-0123456789"
VERCEL = {
    "BACKEND": "cronhooks.authenticators.vercel.VercelCronAuthenticator",
    "OPTIONS": {"SECRETS": [CRON_SECRET]},
}
BEARER = {"BACKEND": "cronhooks.authenticators.bearer.BearerAuthenticator"}


@pytest.fixture
def vercel(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "AUTHENTICATORS": [BEARER, VERCEL]}


@pytest.mark.usefixtures("vercel")
def test_vercel_crons_get_runs_the_job(client: Client) -> None:
    response = client.get(
        "/cron/mop-recent?delta=5",
        headers={
            "Authorization": f"Bearer {CRON_SECRET}",
            "User-Agent": "vercel-cron/1.0",
        },
    )

    assert response.status_code == 200, response.json()
    run = JobRun.objects.get()
    assert (run.status, run.params) == ("succeeded", {"delta": 5})


@pytest.mark.usefixtures("vercel")
def test_the_cron_secret_also_triggers_with_post(client: Client) -> None:
    response = client.post(
        "/cron/ping", headers={"Authorization": f"Bearer {CRON_SECRET}"}
    )

    assert response.status_code == 200


@pytest.mark.usefixtures("vercel")
def test_a_bearer_token_still_may_not_get(client: Client) -> None:
    response = client.get("/cron/ping", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    # Authenticated: a refused trigger of a token holder is recorded.
    assert JobRun.objects.get().reason == "method_not_allowed"


@pytest.mark.usefixtures("vercel")
def test_a_get_without_a_credential_is_401_when_vercel_is_configured(
    client: Client,
) -> None:
    response = client.get("/cron/ping")

    assert response.status_code == 401
    assert not JobRun.objects.exists()


@pytest.mark.usefixtures("vercel")
def test_a_wrong_cron_secret_is_401(client: Client) -> None:
    response = client.get("/cron/ping", headers={"Authorization": "Bearer " + "z" * 30})

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid token."
    assert CRON_SECRET not in response.content.decode()


def test_get_stays_405_without_vercel(client: Client) -> None:
    response = client.get("/cron/ping", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 405
    assert response["Allow"] == "POST"


@pytest.mark.usefixtures("vercel")
def test_unauthenticated_callers_are_told_get_is_allowed(client: Client) -> None:
    response = client.put("/cron/ping")

    assert response.status_code == 405
    assert response["Allow"] == "POST, GET"
