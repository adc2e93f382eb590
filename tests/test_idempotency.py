"""Idempotency-Key: one run per key, whatever the scheduler retries.

The semantics of draft-ietf-httpapi-idempotency-key-header: completed -> the
first result again, marked as a replay; in progress -> 409; other
parameters -> 422; malformed -> 400. Races between processes are in
test_idempotency_concurrency.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client
from django.utils import timezone

from cronhooks import idempotency
from cronhooks.idempotency import fingerprint, idempotency_key
from cronhooks.jobs import get_job
from cronhooks.locks import get_backend
from cronhooks.models import IdempotencyKey, JobRun
from cronhooks.runs import Trigger, run_job
from cronhooks.runs.execution import JobLease
from cronhooks.testing import trigger
from elections.models import ImportRun

KEY = "2f1c0a9e6b7d4c3e8a5b0f1d2c3e4a5b"


def keyed(key: str = KEY, **headers: str) -> dict[str, str]:
    return {"Idempotency-Key": key, **headers}


def imports() -> int:
    """How many times the demo import command really ran."""
    return ImportRun.objects.count()


# The header


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("abc-123", "abc-123"),
        (
            '"8e03978e-40d5-43e8-bc93-6894a57f9324"',
            "8e03978e-40d5-43e8-bc93-6894a57f9324",
        ),
        (r'"say \"hi\" \\ there"', 'say "hi" \\ there'),
        ("  padded  ", "padded"),
        ("k" * 255, "k" * 255),
    ],
)
def test_a_key_is_read_bare_or_as_a_structured_field_string(
    header: str, key: str
) -> None:
    assert idempotency_key(header) == key


def test_no_header_means_no_key() -> None:
    assert idempotency_key(None) == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("", "empty"),
        ('""', "empty"),
        ("k" * 256, "longer than 255"),
        ("a\x01b", "printable ASCII"),
        ("clé", "printable ASCII"),
        ('"unterminated', "printable ASCII"),
    ],
)
def test_a_malformed_key_is_refused_with_400_and_recorded(
    client: Client, header: str, problem: str
) -> None:
    response = trigger(client, "mop-recent", headers=keyed(header))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_idempotency_key"
    assert problem in error["message"]
    assert imports() == 0
    run = JobRun.objects.get()
    assert (run.status, run.reason) == ("rejected", "invalid_idempotency_key")


# Completed keys are replayed


@pytest.mark.django_db
def test_a_completed_key_replays_the_first_result_without_running_again(
    client: Client,
) -> None:
    first = trigger(client, "mop-recent", headers=keyed(**{"X-Correlation-ID": "a1"}))
    again = trigger(client, "mop-recent", headers=keyed(**{"X-Correlation-ID": "a2"}))

    assert first.status_code == again.status_code == 200
    assert again.json() == {**first.json(), "replayed": True}
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert again["X-Correlation-ID"] == "a2"
    assert again.json()["correlation_id"] == "a1"
    assert imports() == 1


@pytest.mark.django_db
def test_a_replay_is_recorded_as_such_and_points_at_the_first_run(
    client: Client,
) -> None:
    first = trigger(client, "mop-recent", headers=keyed()).json()
    trigger(client, "mop-recent", headers=keyed(**{"X-Correlation-ID": "retry-1"}))

    replay = JobRun.objects.get(status="replayed")
    assert str(replay.replay_of) == first["run_id"]
    assert replay.correlation_id == "retry-1"
    assert replay.idempotency_key == KEY
    assert replay.reason == "idempotent_replay"
    # A replay ran nothing: it is not the job's last run.
    assert (
        JobRun.objects.last_runs(["mop-recent"])["mop-recent"].run_id
        == (first["run_id"])
    )


@pytest.mark.django_db
def test_a_replay_of_a_failed_run_answers_the_same_failure(client: Client) -> None:
    first = trigger(client, "boom", headers=keyed())
    again = trigger(client, "boom", headers=keyed())

    assert first.status_code == again.status_code == 500
    assert again.json() == {**first.json(), "replayed": True}
    assert JobRun.objects.filter(job="boom", status="failed").count() == 1


@pytest.mark.django_db
def test_the_same_parameters_written_differently_are_the_same_request(
    client: Client,
) -> None:
    trigger(client, "mop-recent", headers=keyed())  # delta defaults to 25
    by_query = trigger(client, "mop-recent", query={"delta": "25"}, headers=keyed())
    by_body = trigger(client, "mop-recent", body={"delta": 25}, headers=keyed())

    assert by_query.json()["replayed"] is by_body.json()["replayed"] is True
    assert imports() == 1


@pytest.mark.django_db
def test_without_a_key_every_trigger_runs(client: Client) -> None:
    trigger(client, "mop-recent")
    response = trigger(client, "mop-recent")

    assert "replayed" not in response.json()
    assert imports() == 2


# Other parameters, other jobs, other keys


@pytest.mark.django_db
def test_the_same_key_with_other_parameters_is_refused_with_422(
    client: Client,
) -> None:
    trigger(client, "mop-recent", query={"delta": "25"}, headers=keyed())
    response = trigger(client, "mop-recent", query={"delta": "60"}, headers=keyed())

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert imports() == 1
    refused = JobRun.objects.get(status="rejected")
    assert (refused.reason, refused.params) == (
        "idempotency_key_reused",
        {"delta": "60"},
    )


@pytest.mark.django_db
def test_keys_are_scoped_per_job(client: Client) -> None:
    trigger(client, "mop-recent", headers=keyed())
    other_job = trigger(client, "ee-recent", headers=keyed())

    assert other_job.status_code == 200
    assert "replayed" not in other_job.json()
    assert imports() == 2


@pytest.mark.django_db
def test_another_key_runs_the_job_again(client: Client) -> None:
    trigger(client, "mop-recent", headers=keyed("tick-1"))
    trigger(client, "mop-recent", headers=keyed("tick-2"))

    assert imports() == 2


@pytest.mark.django_db
def test_a_key_is_forgotten_after_the_retention(client: Client, settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "IDEMPOTENCY_RETENTION": 3600}
    with time_machine.travel(timezone.now(), tick=False) as clock:
        trigger(client, "mop-recent", headers=keyed())
        clock.shift(timedelta(seconds=3599))
        within = trigger(client, "mop-recent", headers=keyed())
        clock.shift(timedelta(seconds=2))
        after = trigger(client, "mop-recent", headers=keyed())

    assert within.json()["replayed"] is True
    assert after.status_code == 200
    assert "replayed" not in after.json()
    assert imports() == 2
    assert IdempotencyKey.objects.get().expires_at > timezone.now()


# Keys whose first trigger did not complete


@pytest.mark.django_db
def test_a_trigger_refused_before_running_frees_its_key(client: Client) -> None:
    lease = get_backend().acquire("mop-recent", "someone-else", 60)
    assert lease is not None

    held = trigger(client, "mop-recent", headers=keyed())
    get_backend().release(lease)
    retried = trigger(client, "mop-recent", headers=keyed())

    assert held.status_code == 409
    assert held.json()["error"]["code"] == "already_running"
    assert retried.status_code == 200
    assert "replayed" not in retried.json()
    assert imports() == 1


@pytest.mark.django_db
def test_a_key_whose_run_was_abandoned_may_run_again(client: Client) -> None:
    dead = JobRun.objects.create(
        job="mop-recent",
        status=JobRun.Status.ABANDONED,
        source=JobRun.Source.HTTP,
        correlation_id="dead",
        started_at=timezone.now(),
    )
    IdempotencyKey.objects.create(
        job="mop-recent",
        key=KEY,
        fingerprint=fingerprint({"delta": 25}),
        run_id=dead.id,
        created_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=1),
    )

    response = trigger(client, "mop-recent", headers=keyed())

    assert response.status_code == 200
    assert "replayed" not in response.json()
    assert imports() == 1
    assert str(IdempotencyKey.objects.get().run_id) == response.json()["run_id"]


def claimed(run_id: uuid.UUID, *, ago: timedelta = timedelta(0)) -> None:
    """The key as a trigger left it after claiming it for ``run_id``."""
    IdempotencyKey.objects.create(
        job="mop-recent",
        key=KEY,
        fingerprint=fingerprint({"delta": 25}),
        run_id=run_id,
        created_at=timezone.now() - ago,
        expires_at=timezone.now() + timedelta(hours=1),
    )


def running_since(ago: timedelta, fencing_token: int | None = None) -> JobRun:
    return JobRun.objects.create(
        job="mop-recent",
        status=JobRun.Status.RUNNING,
        source=JobRun.Source.HTTP,
        correlation_id="first",
        started_at=timezone.now() - ago,
        fencing_token=fencing_token,
    )


@pytest.mark.django_db
def test_a_key_claimed_a_moment_ago_without_a_run_yet_is_in_progress(
    client: Client,
) -> None:
    claimed(uuid.uuid4(), ago=timedelta(seconds=5))

    response = trigger(client, "mop-recent", headers=keyed())

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_progress"
    assert imports() == 0


@pytest.mark.django_db
def test_a_key_whose_trigger_died_before_recording_its_run_may_run_again(
    client: Client,
) -> None:
    # Claimed, then the process was killed before the run was recorded.
    claimed(uuid.uuid4(), ago=timedelta(seconds=61))

    response = trigger(client, "mop-recent", headers=keyed())

    assert response.status_code == 200
    assert imports() == 1
    assert str(IdempotencyKey.objects.get().run_id) == response.json()["run_id"]


@pytest.mark.django_db
def test_a_key_whose_run_holder_died_may_run_again(client: Client) -> None:
    # "running" for longer than the job's lock TTL, and its lock is free.
    dead = running_since(timedelta(seconds=3601), fencing_token=7)
    claimed(dead.id, ago=timedelta(seconds=3601))

    response = trigger(client, "mop-recent", headers=keyed())

    assert response.status_code == 200
    assert imports() == 1
    dead.refresh_from_db()
    assert dead.status == "abandoned"


@pytest.mark.django_db
def test_a_run_without_a_lock_keeps_its_key_however_long_it_runs(
    client: Client,
) -> None:
    # FAIL_OPEN ran it without a lock: nothing tells it from a dead run.
    unlocked = running_since(timedelta(seconds=3601))
    claimed(unlocked.id, ago=timedelta(seconds=3601))

    response = trigger(client, "mop-recent", headers=keyed())

    assert response.status_code == 409
    assert imports() == 0


@pytest.mark.django_db
def test_a_trigger_whose_key_was_taken_over_while_it_stalled_does_not_run(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    acquire = JobLease.acquire

    def stalled(self: JobLease, *, wait: float = 0) -> Any:
        lease = acquire(self, wait=wait)
        # Meanwhile a retry found the claim stale and took the key over.
        IdempotencyKey.objects.filter(key=KEY).update(run_id=uuid.uuid4())
        return lease

    monkeypatch.setattr(JobLease, "acquire", stalled)

    response = trigger(client, "mop-recent", headers=keyed())

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_progress"
    assert imports() == 0
    assert get_backend().holder("mop-recent") is None
    assert IdempotencyKey.objects.count() == 1  # the retry's claim is kept


@pytest.mark.django_db
def test_a_confirmed_claim_is_fresh_again(client: Client) -> None:
    owner = uuid.uuid4()
    claimed(owner, ago=timedelta(seconds=61))
    job = get_job("mop-recent")

    assert idempotency.confirm(job, KEY, owner) is True
    assert idempotency.confirm(job, KEY, uuid.uuid4()) is False
    # The owner is about to record its run: a retry must wait for it.
    response = trigger(client, "mop-recent", headers=keyed())
    assert response.status_code == 409


@pytest.mark.django_db
def test_a_long_run_still_holding_its_lock_keeps_its_key(client: Client) -> None:
    alive = running_since(timedelta(seconds=3601), fencing_token=7)
    claimed(alive.id, ago=timedelta(seconds=3601))
    lease = get_backend().acquire("mop-recent", alive.run_id, 60)
    assert lease is not None

    response = trigger(client, "mop-recent", headers=keyed())

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_progress"
    assert imports() == 0


@pytest.mark.django_db(transaction=True)
def test_a_key_still_running_gets_409_then_the_result_once_finished(
    client: Client,
) -> None:
    outcome: dict[str, Any] = {}

    def first_attempt() -> None:
        try:
            outcome["first"] = run_job(
                Trigger(
                    job="held",
                    source=JobRun.Source.HTTP,
                    correlation_id="first",
                    params={"seconds": 1.0},
                    idempotency_key=KEY,
                )
            )
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_attempt)
    thread.start()
    deadline = time.monotonic() + 10
    while not JobRun.objects.filter(job="held", status="running").exists():
        assert time.monotonic() < deadline, "the first attempt never started"
        time.sleep(0.01)

    during = trigger(client, "held", body={"seconds": 1.0}, headers=keyed())
    thread.join(timeout=30)
    after = trigger(client, "held", body={"seconds": 1.0}, headers=keyed())

    assert during.status_code == 409
    assert during.json()["error"]["code"] == "idempotency_key_in_progress"
    assert after.status_code == 200
    assert after.json()["run_id"] == outcome["first"].run.run_id
    assert after.json()["replayed"] is True
    assert JobRun.objects.filter(job="held", status="succeeded").count() == 1


# The command line and pruning


@pytest.mark.django_db
def test_cronhooks_run_takes_an_idempotency_key() -> None:
    first, again = StringIO(), StringIO()
    call_command(
        "cronhooks", "run", "mop-recent", "--idempotency-key", KEY, stdout=first
    )
    call_command(
        "cronhooks", "run", "mop-recent", "--idempotency-key", KEY, stdout=again
    )

    run = JobRun.objects.get(status="succeeded")
    assert "succeeded" in first.getvalue()
    assert f"already ran for this idempotency key (run {run.id})" in again.getvalue()
    assert imports() == 1


@pytest.mark.django_db
def test_cronhooks_run_refuses_an_empty_idempotency_key() -> None:
    with pytest.raises(CommandError) as excinfo:
        call_command("cronhooks", "run", "mop-recent", "--idempotency-key", "")

    assert excinfo.value.returncode == 2
    assert "empty" in str(excinfo.value)
    assert imports() == 0


@pytest.mark.django_db
def test_prune_deletes_expired_keys_only() -> None:
    now = timezone.now()
    for key, expires in (
        ("old", now - timedelta(seconds=1)),
        ("live", now + timedelta(hours=1)),
    ):
        IdempotencyKey.objects.create(
            job="ping",
            key=key,
            fingerprint=fingerprint({}),
            run_id=uuid.uuid4(),
            created_at=now - timedelta(days=1),
            expires_at=expires,
        )
    out = StringIO()

    call_command("cronhooks", "prune", stdout=out)

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["live"]
    assert "Deleted 1 expired idempotency key(s)." in out.getvalue()


# Races lost to another request, at the exact statement where each can be


class Rival:
    """Another request on its own database connection, acting just before
    this request's next statement that starts with ``before`` (the key's
    INSERT, SELECT or UPDATE), in the order given."""

    def __init__(self) -> None:
        self.connection = connections.create_connection("default")
        self.moves: list[tuple[str, Callable[[], object]]] = []

    def before(self, statement: str, move: Callable[[], object]) -> None:
        self.moves.append((statement, move))

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: Any,
    ) -> Any:
        if (
            self.moves
            and sql.startswith(self.moves[0][0])
            and '"cronhooks_idempotencykey"' in sql
        ):
            self.moves.pop(0)[1]()
        return execute(sql, params, many, context)

    def run(self, sql: str, *params: Any) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)

    def take_over(self, run_id: uuid.UUID) -> None:
        """Take the key over for a run of its own, as a concurrent retry."""
        self.run(
            "UPDATE cronhooks_idempotencykey SET run_id = %s, created_at = %s, "
            "expires_at = %s WHERE key = %s",
            run_id.hex,
            timezone.now(),
            timezone.now() + timedelta(hours=1),
            KEY,
        )

    def prune(self) -> None:
        self.run("DELETE FROM cronhooks_idempotencykey WHERE key = %s", KEY)

    def claim(self) -> None:
        self.run(
            "INSERT INTO cronhooks_idempotencykey "
            "(job, key, fingerprint, run_id, created_at, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            "mop-recent",
            KEY,
            fingerprint({"delta": 25}),
            uuid.uuid4().hex,
            timezone.now(),
            timezone.now() + timedelta(hours=1),
        )


@pytest.fixture
def rival() -> Iterator[Rival]:
    from django.db import connection

    other = Rival()
    try:
        with connection.execute_wrapper(other):
            yield other
    finally:
        other.connection.close()


def expired_claim() -> None:
    claimed(uuid.uuid4())
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db(transaction=True)
def test_a_key_pruned_while_read_is_claimed_again_and_the_job_runs(
    client: Client, rival: Rival
) -> None:
    expired_claim()
    rival.before("SELECT", rival.prune)

    response = trigger(client, "mop-recent", headers=keyed())

    assert response.status_code == 200
    assert imports() == 1
    assert str(IdempotencyKey.objects.get().run_id) == response.json()["run_id"]


@pytest.mark.django_db(transaction=True)
def test_an_expired_key_another_request_takes_over_first_is_in_progress(
    client: Client, rival: Rival
) -> None:
    expired_claim()
    rivals_run = uuid.uuid4()
    rival.before("UPDATE", lambda: rival.take_over(rivals_run))

    response = trigger(client, "mop-recent", headers=keyed())

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_progress"
    assert str(rivals_run) in response.json()["error"]["message"]
    assert imports() == 0
    assert IdempotencyKey.objects.get().run_id == rivals_run


@pytest.mark.django_db(transaction=True)
def test_a_dead_runs_key_another_retry_takes_over_first_is_in_progress(
    client: Client, rival: Rival
) -> None:
    # Two retries after a run that was abandoned: one of them runs the job.
    claimed(uuid.uuid4(), ago=timedelta(seconds=61))
    rivals_run = uuid.uuid4()
    rival.before("UPDATE", lambda: rival.take_over(rivals_run))

    response = trigger(client, "mop-recent", headers=keyed())

    assert response.status_code == 409
    assert str(rivals_run) in response.json()["error"]["message"]
    assert imports() == 0


@pytest.mark.django_db(transaction=True)
def test_a_key_that_keeps_changing_hands_is_given_up_on_with_409(
    client: Client, rival: Rival
) -> None:
    # Each attempt finds the key taken, and gone when it looks: bounded.
    for _ in range(3):
        rival.before("INSERT", rival.claim)
        rival.before("SELECT", rival.prune)

    response = trigger(client, "mop-recent", headers=keyed())

    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "idempotency_key_in_progress",
        "message": "Another request with this Idempotency-Key is being handled.",
    }
    assert imports() == 0
