"""cronhooks.runs.admission: a trigger refused at any step says why, runs
nothing and leaves nothing behind: no lock held, no run left running.

The run history is a real PostgreSQL behind a proxy (tests/conftest.py), cut
away at the moment each test names, through a lock backend with hooks
(tests/testapp/locks.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from cronhooks.locks import get_backend
from cronhooks.models import JobRun
from cronhooks.testing import trigger
from elections.models import ImportRun
from tests.conftest import JsonLines, PostgresProxy
from tests.testapp.locks import HOOKS

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "postgres", "proxied"]
)


def hooked_locks(settings: Any, database: str) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {
            "BACKEND": "tests.testapp.locks.HookedDatabaseLockBackend",
            "OPTIONS": {"DATABASE": database},
        },
    }


@pytest.fixture(autouse=True)
def _no_hooks_left() -> Iterator[None]:
    yield
    HOOKS.clear()


def messages(json_lines: JsonLines) -> set[str]:
    return {line["message"] for line in json_lines()}


@pytest.mark.parametrize("key", [None, "tick-1"], ids=["without-key", "with-key"])
def test_a_history_database_that_is_down_is_503_and_nothing_runs(
    client: Client,
    proxied_history: PostgresProxy,
    json_lines: JsonLines,
    key: str | None,
) -> None:
    proxied_history.stop()

    response = trigger(
        client, "mop-recent", headers={"Idempotency-Key": key} if key else {}
    )

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    body = response.json()
    assert (body["status"], body["error"]["code"]) == (
        "rejected",
        "backend_unavailable",
    )
    assert not ImportRun.objects.exists()
    assert get_backend().holder("mop-recent") is None
    # Not even the refusal could be recorded: the log has it.
    assert {"run_record_failed", "trigger_rejected"} <= messages(json_lines)
    proxied_history.restart()
    assert not JobRun.objects.exists()


@pytest.mark.parametrize("key", [None, "tick-2"], ids=["without-key", "with-key"])
def test_a_history_lost_once_the_lock_is_taken_refuses_and_frees_the_lock(
    client: Client,
    settings: Any,
    proxied_history: PostgresProxy,
    json_lines: JsonLines,
    key: str | None,
) -> None:
    hooked_locks(settings, "default")
    HOOKS["after_acquire"] = proxied_history.stop

    response = trigger(
        client, "mop-recent", headers={"Idempotency-Key": key} if key else {}
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "backend_unavailable"
    assert not ImportRun.objects.exists()
    assert get_backend().holder("mop-recent") is None
    if key:
        # Its claim could not be checked, nor given back: it lapses by itself.
        assert {"idempotency_claim_failed", "idempotency_release_failed"} <= messages(
            json_lines
        )
    HOOKS.clear()
    proxied_history.restart()
    assert not JobRun.objects.filter(status__in=["queued", "running"]).exists()


def test_a_lock_that_cannot_be_freed_flags_the_answer_even_if_the_flag_is_lost(
    client: Client,
    settings: Any,
    proxied_history: PostgresProxy,
    json_lines: JsonLines,
) -> None:
    # The lock lives in the history's database: both go away together, after
    # the outcome is recorded and before the lock is freed.
    hooked_locks(settings, "proxied")
    HOOKS["before_release"] = proxied_history.stop

    response = trigger(client, "ping")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["lock_lost"]) == (
        "succeeded",
        True,
    )
    assert {"lock_release_failed", "run_record_failed"} <= messages(json_lines)
    HOOKS.clear()
    proxied_history.restart()
    run = JobRun.objects.get(id=response.json()["run_id"])
    assert run.status == "succeeded"


def test_a_replay_whose_record_is_refused_still_answers_the_first_result(
    client: Client, proxied_history: PostgresProxy, json_lines: JsonLines
) -> None:
    first = trigger(client, "mop-recent", headers={"Idempotency-Key": "tick-3"})
    # The database itself refuses to record replays from now on.
    with connections["proxied"].cursor() as cursor:
        cursor.execute(REFUSE_REPLAYS)
    try:
        again = trigger(client, "mop-recent", headers={"Idempotency-Key": "tick-3"})
    finally:
        with connections["proxied"].cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_replays ON cronhooks_jobrun")

    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["run_id"] == first.json()["run_id"]
    assert "run_record_failed" in messages(json_lines)
    assert not JobRun.objects.filter(status="replayed").exists()
    assert ImportRun.objects.count() == 1


REFUSE_REPLAYS = """
CREATE OR REPLACE FUNCTION refuse_replays() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'replays are refused by this test';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_replays BEFORE INSERT ON cronhooks_jobrun
    FOR EACH ROW WHEN (NEW.status = 'replayed') EXECUTE FUNCTION refuse_replays();
"""
