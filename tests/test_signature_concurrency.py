"""One signed request sent by several processes at the same instant is
accepted once: the replay store is shared by every process and machine."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cronhooks.authenticators.signature import sign
from cronhooks.models import JobRun, UsedSignature
from tests.conftest import ON_POSTGRES
from tests.workers import worker_env

pytestmark = [pytest.mark.slow, ON_POSTGRES]

SECRET = "signing-secret-0123456789abcdefghijklmnopqrstuvwxyz"
PROCESSES = 4


def race(
    tmp_path: Path, options: dict[str, Any], extra_env: dict[str, str]
) -> list[dict[str, Any]]:
    """Send one signed POST /cron/ping from PROCESSES processes at once."""
    signature = {
        "BACKEND": "cronhooks.authenticators.signature.SignatureAuthenticator",
        "OPTIONS": {"SECRETS": [SECRET], **options},
    }
    overrides = {"AUTHENTICATORS": [signature]}
    headers = {"X-Cronhooks-Signature": sign(SECRET, "POST", "/cron/ping")}
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {
        **worker_env({"BACKEND": "cronhooks.locks.database.DatabaseLockBackend"}),
        # The run history and the used signatures on PostgreSQL.
        "CRONHOOKS_WORKER_STORE": "postgres",
        "CRONHOOKS_WORKER_SETTINGS": json.dumps(overrides),
        "CRONHOOKS_WORKER_BARRIER": str(barrier),
        **extra_env,
    }
    command = [sys.executable, "-m", "tests.signed_requests", "/cron/ping"]
    processes = [
        subprocess.Popen(
            [*command, json.dumps(headers)], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(PROCESSES)
    ]
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready-*"))) < PROCESSES:
        assert time.monotonic() < deadline, "the processes did not start"
        assert all(p.poll() is None for p in processes), "a process died"
        time.sleep(0.02)
    (barrier / "go").touch()
    answers = []
    for process in processes:
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0, out
        answers.append(json.loads(out.splitlines()[-1]))
    return answers


def accepted_once(answers: list[dict[str, Any]]) -> None:
    statuses = sorted(answer["status"] for answer in answers)
    assert statuses == [200] + [401] * (PROCESSES - 1), answers
    refused = [answer for answer in answers if answer["status"] == 401]
    assert all("already used" in answer["message"] for answer in refused)
    assert JobRun.objects.using("postgres").filter(job="ping").count() == 1


def test_racing_processes_accept_a_signature_once_with_the_database_store(
    tmp_path: Path,
) -> None:
    accepted_once(race(tmp_path, {}, {}))
    assert UsedSignature.objects.using("postgres").count() == 1


def test_racing_processes_accept_a_signature_once_with_a_redis_store(
    tmp_path: Path, redis_url: str
) -> None:
    # tests/settings.py's "redis" cache alias reads REDIS_URL.
    answers = race(tmp_path, {"REPLAY_CACHE": "redis"}, {"REDIS_URL": redis_url})

    accepted_once(answers)
    assert not UsedSignature.objects.using("postgres").exists()
