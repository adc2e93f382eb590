"""cronhooks.runs.refusals: a burst of identical refused triggers is counted on
one record per server thread and window; every refusal is in the count.

The concurrent proof, against a real server on PostgreSQL, is in
tests/test_refusals_concurrency.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cronhooks.models import JobRun
from cronhooks.runs import refusals
from cronhooks.testing import trigger
from tests.conftest import PostgresProxy

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def refused(client: Client, job: str = "off", **kwargs: Any) -> dict[str, Any]:
    response = trigger(client, job, **kwargs)
    assert response.status_code in (404, 503), response.json()
    body: dict[str, Any] = response.json()
    return body


def test_identical_refusals_are_counted_on_the_first_ones_record(
    client: Client, clock: time_machine.Traveller
) -> None:
    first = refused(client, headers={"X-Correlation-ID": "tick-1"})
    clock.shift(2)
    second = refused(client, headers={"X-Correlation-ID": "tick-2"})
    clock.shift(3)
    third = refused(client, headers={"X-Correlation-ID": "tick-3"})

    record = JobRun.objects.get()
    assert (record.status, record.reason, record.count) == (
        "rejected",
        "job_disabled",
        3,
    )
    # Each answer names the record that counts it, and keeps its own
    # correlation ID; the record keeps the first's.
    assert first["run_id"] == second["run_id"] == third["run_id"] == record.run_id
    assert [first["correlation_id"], third["correlation_id"]] == ["tick-1", "tick-3"]
    assert record.correlation_id == "tick-1"
    # From the first refusal to the last.
    assert record.duration == timedelta(seconds=5)


def test_a_counted_refusal_costs_one_update(client: Client) -> None:
    refused(client)

    with CaptureQueriesContext(connection) as queries:
        refused(client)

    assert [query["sql"].split()[0] for query in queries] == ["UPDATE"]


@pytest.mark.parametrize(
    "differs",
    [
        {"job": "no-such-job"},
        {"query": {"word": "other"}},
        {"headers": {"Idempotency-Key": "another-key"}},
        {"REMOTE_ADDR": "203.0.113.9"},
    ],
    ids=["reason and job", "params", "idempotency key", "caller address"],
)
def test_a_refusal_that_differs_in_anything_recorded_gets_its_own_record(
    client: Client, differs: dict[str, Any]
) -> None:
    refused(client, query={"word": "same"}, headers={"Idempotency-Key": "one-key"})
    address = differs.pop("REMOTE_ADDR", None)
    if address is not None:
        client.defaults["REMOTE_ADDR"] = address
    refused(
        client,
        **{"query": {"word": "same"}, "headers": {"Idempotency-Key": "one-key"}}
        | differs,
    )

    assert sorted(JobRun.objects.values_list("count", flat=True)) == [1, 1]


def test_a_refusal_after_the_window_starts_a_new_record(
    client: Client, clock: time_machine.Traveller, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "FOLD_REFUSALS": 10}
    refused(client)
    clock.shift(9.9)
    refused(client)
    clock.shift(0.1)  # 10 s after the record's first refusal
    refused(client)
    refused(client)

    counts = JobRun.objects.order_by("started_at").values_list("count", flat=True)
    assert list(counts) == [2, 2]


def test_without_a_window_each_refusal_is_its_own_record(
    client: Client, settings: Any
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "FOLD_REFUSALS": 0}
    answers = [refused(client)["run_id"] for _ in range(3)]

    assert len(set(answers)) == 3
    assert list(JobRun.objects.values_list("count", flat=True)) == [1, 1, 1]


def test_a_record_pruned_meanwhile_is_written_again(client: Client) -> None:
    refused(client)
    JobRun.objects.all().delete()

    answer = refused(client)

    record = JobRun.objects.get()
    assert (record.run_id, record.count) == (answer["run_id"], 1)


@pytest.mark.django_db(transaction=True)
def test_another_thread_counts_on_its_own_record(client: Client) -> None:
    # One shared row would make every refusal of a flood wait for the commit
    # of the one before it (see refusals.py).
    refused(client)

    def from_another_thread() -> None:
        try:
            refused(Client())
        finally:
            connection.close()

    thread = threading.Thread(target=from_another_thread)
    thread.start()
    thread.join()
    refused(client)

    assert sorted(JobRun.objects.values_list("count", flat=True)) == [1, 2]


def test_a_thread_remembers_a_bounded_number_of_records(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refusals, "MAX_REMEMBERED", 3)
    for word in ("a", "b", "c", "d"):
        refused(client, query={"word": word})
    # "a", the oldest, was forgotten to make room for "d": it gets a new record.
    refused(client, query={"word": "a"})
    refused(client, query={"word": "d"})

    assert sorted(JobRun.objects.values_list("params__word", "count")) == [
        ("a", 1),
        ("a", 1),
        ("b", 1),
        ("c", 1),
        ("d", 2),
    ]


def test_records_past_the_window_are_forgotten_before_recent_ones(
    client: Client, clock: time_machine.Traveller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refusals, "MAX_REMEMBERED", 2)
    refused(client, query={"word": "old"})
    clock.shift(5)
    refused(client, query={"word": "a"})
    clock.shift(4)
    refused(client, query={"word": "old"})  # counted: now the latest used
    clock.shift(3)
    refused(client, query={"word": "b"})  # "old" is past its window: it goes

    refused(client, query={"word": "a"})

    assert sorted(JobRun.objects.values_list("params__word", "count")) == [
        ("a", 2),
        ("b", 1),
        ("old", 2),
    ]


@pytest.mark.django_db(transaction=True, databases=["default", "postgres", "proxied"])
def test_a_refusal_that_cannot_be_counted_is_answered_503(
    client: Client, proxied_history: PostgresProxy
) -> None:
    refused(client)
    proxied_history.stop()

    response = trigger(client, "off")
    proxied_history.restart()

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "backend_unavailable"
    assert JobRun.objects.using("proxied").get().count == 1


def test_a_records_status_shows_its_count(client: Client, auth: dict[str, str]) -> None:
    run_id = refused(client)["run_id"]
    refused(client)

    response = client.get(f"/cron/runs/{run_id}", headers=auth)

    body = response.json()
    assert (body["status"], body["count"]) == ("rejected", 2)
    assert body["error"]["code"] == "job_disabled"


def test_a_run_answers_and_shows_a_count_of_one(client: Client) -> None:
    ran = trigger(client, "ping").json()

    assert ran["count"] == 1
    assert JobRun.objects.get().count == 1
