"""Two processes racing one Idempotency-Key still run the job exactly once.

Real processes, released at the same instant, against the database lease on
SQLite, and with the keys on PostgreSQL behind the database lease and Redis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cronhooks.models import IdempotencyKey, JobRun
from tests.conftest import ON_POSTGRES, lock_config
from tests.workers import results, start_together

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

KEY = "race-7d9e1c2b"


@pytest.mark.parametrize(
    ("store", "lock"),
    [
        ("default", "default-db"),
        pytest.param("postgres", "postgres-db", marks=ON_POSTGRES),
        pytest.param("postgres", "redis", marks=ON_POSTGRES),
    ],
)
def test_concurrent_duplicates_run_the_job_exactly_once(
    store: str, lock: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue("redis_url") if lock == "redis" else None
    path = tmp_path / "intervals"
    # Long enough that the duplicates arrive while the first still runs.
    params = {"path": str(path), "seconds": 0.5}
    extra = {"CRONHOOKS_WORKER_IDEMPOTENCY_KEY": KEY}
    if store == "postgres":
        extra["CRONHOOKS_WORKER_STORE"] = "postgres"

    workers = start_together(
        lock_config(lock, url), 4, "interval", 1, params, tmp_path / "barrier", extra
    )
    lines: list[dict[str, Any]] = [line for w in workers for line in results(w)]

    assert len(path.read_text().splitlines()) == 1, "the job ran more than once"
    ran = [line for line in lines if line["code"] == 200 and not line["replayed"]]
    assert len(ran) == 1
    others = [line for line in lines if line is not ran[0]]
    # Every duplicate was told the key is taken, or given the first result.
    for line in others:
        assert line["error"] == "idempotency_key_in_progress" or (
            line["replayed"] and line["run_id"] == ran[0]["run_id"]
        ), line
    history = JobRun.objects.using(store)
    assert history.filter(status="succeeded").count() == 1
    assert history.count() == 4
    key = IdempotencyKey.objects.using(store).get()
    assert (key.job, key.key, str(key.run_id)) == ("interval", KEY, ran[0]["run_id"])
