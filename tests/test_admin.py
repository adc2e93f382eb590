"""The run history admin is read-only: records come only from runs."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from cronhooks.models import JobRun
from cronhooks.testing import trigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_changelist_lists_and_filters_runs(
    admin_client: Client, client: Client
) -> None:
    trigger(client, "ping")
    trigger(client, "boom")

    response = admin_client.get("/admin/cronhooks/jobrun/", {"status__exact": "failed"})

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert response.context["cl"].result_list[0].job == "boom"


def test_search_by_correlation_id(admin_client: Client, client: Client) -> None:
    trigger(client, "ping", headers={"X-Correlation-ID": "find-me"})
    trigger(client, "ping")

    response = admin_client.get("/admin/cronhooks/jobrun/", {"q": "find-me"})

    assert response.context["cl"].result_count == 1


def test_detail_is_viewable_but_not_editable(
    admin_client: Client, client: Client
) -> None:
    trigger(client, "ping")
    run = JobRun.objects.get()

    page = admin_client.get(f"/admin/cronhooks/jobrun/{run.pk}/change/")
    post = admin_client.post(f"/admin/cronhooks/jobrun/{run.pk}/change/", {"job": "x"})

    assert page.status_code == 200
    assert b"pong" in page.content
    assert post.status_code == 403
    run.refresh_from_db()
    assert run.job == "ping"


def test_runs_cannot_be_added_or_deleted(admin_client: Client, client: Client) -> None:
    trigger(client, "ping")
    run = JobRun.objects.get()

    assert admin_client.get("/admin/cronhooks/jobrun/add/").status_code == 403
    response = admin_client.post(
        f"/admin/cronhooks/jobrun/{run.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert JobRun.objects.filter(pk=run.pk).exists()


def test_a_runs_page_shows_what_its_job_does(
    admin_client: Client, client: Client, settings: Any
) -> None:
    ping = {**settings.CRONHOOKS["JOBS"]["ping"], "description": "Answers pong"}
    jobs = {**settings.CRONHOOKS["JOBS"], "ping": ping}
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}
    trigger(client, "ping")
    run = JobRun.objects.get()

    page = admin_client.get(f"/admin/cronhooks/jobrun/{run.pk}/change/")
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": {}}
    removed = admin_client.get(f"/admin/cronhooks/jobrun/{run.pk}/change/")

    assert b"Answers pong" in page.content
    assert b"no longer in CRONHOOKS" in removed.content


def test_the_list_shows_how_many_refusals_a_record_counts(
    admin_client: Client, client: Client
) -> None:
    for _ in range(3):
        trigger(client, "off")

    response = admin_client.get("/admin/cronhooks/jobrun/")

    assert response.context["cl"].result_count == 1
    # The count column, beside the reason.
    assert b'<td class="field-count">3</td>' in response.content
