"""Every answer under cronhooks' URLs is JSON, without the project's help.

Tested through the example project's URLconf, which includes cronhooks at ""
as the README says, and a project 404 page of Django's own.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings
from django.urls import Resolver404, resolve

from tests.settings import TOKEN

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("example.urls"),
]

METHODS = ("get", "post", "put", "delete", "options")

HOSTILE_PATHS = [
    "/cron",
    f"/cron?token={TOKEN}",
    "/cron;jsessionid=1",
    "/cron\\..\\etc\\passwd",
    "/cron%20x",
    "/cron%00",
    "/cron/",
    "/cron//x",
    "/cron/%2e%2e/%2e%2e/etc/passwd",
    "/cron/..%2f..%2fadmin%2f",
    "/cron/../admin/",
    "/cron/%ff%fe",
    "/cron/a%00b",
    "/cron/runs",
    "/cron/runs/",
    "/cron/runs/%2e%2e",
    "/cron/runs/../../x",
    "/health",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
@pytest.mark.parametrize("method", METHODS)
def test_every_answer_under_cron_is_json(
    client: Client, method: str, path: str
) -> None:
    response = getattr(client, method)(path)

    assert response["Content-Type"] == "application/json", response.status_code
    assert response.status_code < 500
    assert "Location" not in response
    assert TOKEN not in response.content.decode()
    json.loads(response.content)


@override_settings(APPEND_SLASH=True)
def test_cron_without_its_slash_is_a_json_404_not_a_redirect(client: Client) -> None:
    # A redirect would repeat the query string, and a token a caller put in it.
    response = client.post(f"/cron?token={TOKEN}")

    assert response.status_code == 404
    body = response.json()
    assert body["status"] == "rejected"
    assert body["error"]["code"] == "not_found"
    assert response["X-Correlation-ID"]


@pytest.mark.parametrize("path", ["/cronjobs/", "/cron-jobs", "/cron.txt", "/health/"])
def test_paths_a_project_may_serve_itself_are_left_to_it(path: str) -> None:
    # cronhooks is included at "": a catch-all there would shadow every URL
    # the project lists after it.
    with pytest.raises(Resolver404):
        resolve(path)


@pytest.mark.urls("tests.urls_prefixed")
@pytest.mark.parametrize("path", ["/ops", f"/ops?token={TOKEN}", "/ops/", "/ops/x/y"])
def test_under_a_prefix_the_readmes_line_makes_every_answer_json(
    client: Client, path: str
) -> None:
    response = client.post(path)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.urls("tests.urls_prefixed")
def test_under_a_prefix_the_endpoints_still_answer(client: Client) -> None:
    assert client.post("/ops/cron/ping").status_code == 401
