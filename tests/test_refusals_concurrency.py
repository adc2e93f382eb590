"""A flood of refused triggers against a real server: every refusal is counted.

gunicorn (two worker processes of four threads) serves the test settings with
the run history on PostgreSQL; client threads send authenticated triggers of
a job whose lock the test holds, under a per-job rate limit counted in Redis,
so that they are refused 409 and 429 at once. Identical refusals are counted
on a few records (refusals.py); the history must still account for each one,
record by record.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cronhooks.locks import get_backend
from cronhooks.models import JobRun
from tests.conftest import ON_POSTGRES, lock_config
from tests.servers import free_port
from tests.settings import TOKEN
from tests.workers import worker_env

pytestmark = [pytest.mark.slow, ON_POSTGRES]

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 24
EACH = 25  # triggers per client: 600 in all
SERVER_THREADS = 2 * 4


@contextlib.contextmanager
def server(locks: dict[str, object], redis_url: str, log: Path) -> Iterator[int]:
    """gunicorn serving tests.settings, history and lease on PostgreSQL."""
    port = free_port()
    settings = {
        "FOLD_REFUSALS": 600,  # the whole test is one window
        "RATE_LIMITS": {
            "CACHE": "redis",
            "PER_JOB": "200/d",
            "PER_IP": None,
            "AUTH_FAILURES": None,
        },
    }
    env = {
        **worker_env(locks, {"CRONHOOKS_WORKER_STORE": "postgres"}),
        "CRONHOOKS_WORKER_SETTINGS": json.dumps(settings),
        "REDIS_URL": redis_url,
        "CRONHOOKS_TEST_CACHE_PREFIX": f"refusals-{uuid.uuid4().hex}",
    }
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "django.core.wsgi:get_wsgi_application()",
                "--bind",
                f"127.0.0.1:{port}",
                "--worker-class",
                "gthread",
                "--workers",
                "2",
                "--threads",
                "4",
            ],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not answers(port):
                assert process.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
            yield port
        finally:
            process.terminate()
            process.wait(30)


def answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status in (200, 503)
    except OSError:
        return False
    finally:
        connection.close()


def flood(port: int) -> list[dict[str, Any]]:
    """Every answer of CLIENTS clients sending EACH triggers at once."""
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start.wait()
        try:
            for attempt in range(EACH):
                connection.request(
                    "POST",
                    "/cron/held",
                    headers={
                        "Authorization": f"Bearer {TOKEN}",
                        "X-Correlation-ID": f"client-{number}-{attempt}",
                    },
                )
                response = connection.getresponse()
                body = json.loads(response.read())
                with lock:
                    answers.append({**body, "code": response.status})
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.parametrize("kind", ["postgres-db", "redis"])
def test_every_refusal_of_a_flood_is_counted_in_the_history(
    kind: str, redis_url: str, tmp_path: Path
) -> None:
    locks = lock_config(kind, redis_url)
    with server(locks, redis_url, tmp_path / "gunicorn.log") as port:
        from django.test.utils import override_settings

        from tests.settings import CRONHOOKS

        # The test holds the job's lock for the whole flood: each trigger is
        # refused, 409 until the rate limit's 200 are used, then 429.
        with override_settings(CRONHOOKS={**CRONHOOKS, "LOCKS": locks}):
            backend = get_backend()
            lease = backend.acquire("held", "holder-run", 120)
            try:
                answers = flood(port)
            finally:
                backend.release(lease)

    statuses = Counter(answer["code"] for answer in answers)
    assert statuses == {409: 200, 429: CLIENTS * EACH - 200}, statuses
    records = JobRun.objects.using("postgres").filter(job="held")
    assert {record.status for record in records} == {"rejected"}
    # Each answer names the record that counted it: per record, the answers
    # naming it are its count, so no refusal is lost or counted twice.
    named = Counter(answer["run_id"] for answer in answers)
    assert {record.run_id: record.count for record in records} == dict(named)
    assert sum(record.count for record in records) == CLIENTS * EACH
    # Folded: at most one record per server thread for each distinct refusal.
    distinct = {(record.reason, record.error) for record in records}
    assert len(records) <= SERVER_THREADS * len(distinct)
    # Each refusal was logged, with its own correlation ID.
    log = (tmp_path / "gunicorn.log").read_text()
    assert log.count("trigger_rejected") == CLIENTS * EACH
    assert all(f"correlation_id=client-{n}-{EACH - 1} " in log for n in range(CLIENTS))
