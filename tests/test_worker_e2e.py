"""End to end: the real Worker in workerd calls the example project under gunicorn.

The Worker is bundled by wrangler and run by Miniflare
(cronhooks/wrangler/e2e/fire.mjs); the example project runs under gunicorn
with two workers, SQLite and a throwaway Redis for its locks, and a db_worker
runs its background jobs (parties-import). Each test fires production crons
and reads the outcome from the project's run history, its rows and its JSON
log lines.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import require
from tests.servers import RedisServer, free_port

# The same on every Python and Django: run in the corner environments.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
WRANGLER = ROOT / "cronhooks" / "wrangler"
TOKEN = "e2e-token-0123456789abcdefghijklmnopqrstuvwxyz"
PRODUCTION_CRONS = {
    "*/5 * * * *": "ee-recent",
    "6 2 * * *": "parties-import",
    "23 23 * * *": "check-current",
    "33 23 * * *": "mop-recent?delta=25",
}
NODE_ENV = {"WRANGLER_SEND_METRICS": "false", "CLOUDFLARE_CF_FETCH_ENABLED": "false"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wrangler = WRANGLER / "node_modules" / ".bin" / "wrangler"
    require(
        wrangler.exists(),
        "cronhooks/wrangler/node_modules is missing: run `npm ci` there",
    )
    out = tmp_path_factory.mktemp("bundle")
    subprocess.run(
        [
            str(wrangler),
            "deploy",
            "--dry-run",
            "--env",
            "production",
            "--outdir",
            str(out),
        ],
        cwd=WRANGLER,
        env={**os.environ, **NODE_ENV},
        check=True,
        capture_output=True,
    )
    return out / "worker.js"


class Backend:
    """The example project, served by gunicorn."""

    def __init__(
        self, directory: Path, redis_url: str, signing_secret: str = ""
    ) -> None:
        self.database = directory / "db.sqlite3"
        self.log = directory / "gunicorn.log"
        self.worker_log = directory / "db_worker.log"
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CRONHOOKS_")},
            "DJANGO_SETTINGS_MODULE": "tests.e2e_settings",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "example_project")]),
            "CRONHOOKS_TOKEN": TOKEN,
            "REDIS_URL": redis_url,
            "SQLITE_PATH": str(self.database),
            "DJANGO_DEBUG": "false",
            "CRONHOOKS_SIGNING_SECRET": signing_secret,
        }
        self.env.pop("DATABASE_URL", None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "-v", "0"],
            env=self.env,
            check=True,
        )
        self._log_file = self.log.open("w")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "example.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
            ],
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self._worker_log_file = self.worker_log.open("w")
        # The task worker, as the README starts it.
        self._worker = subprocess.Popen(
            [sys.executable, "-m", "django", "db_worker", "--interval", "0.1"],
            env=self.env,
            stdout=self._worker_log_file,
            stderr=subprocess.STDOUT,
        )
        wait_for(self.answers, timeout=30)

    def stop(self) -> None:
        for process in (self._process, self._worker):
            process.terminate()
        for process in (self._process, self._worker):
            process.wait(timeout=30)
        self._log_file.close()
        self._worker_log_file.close()

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2):  # noqa: S310
                return True
        except OSError:
            return False

    def rows(self, sql: str) -> list[dict[str, Any]]:
        with closing(sqlite3.connect(self.database)) as connection:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(sql)]

    def runs(self) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT job, status, reason, correlation_id FROM cronhooks_jobrun "
            "ORDER BY started_at"
        )

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON lines of gunicorn and of the task worker."""
        lines = []
        text = self.log.read_text() + self.worker_log.read_text()
        for line in text.splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue  # gunicorn's own start-up lines
        return lines


@pytest.fixture
def redis_backend(redis_server: RedisServer) -> RedisServer:
    return redis_server


@pytest.fixture
def backend(tmp_path: Path, redis_backend: RedisServer) -> Iterator[Backend]:
    server = Backend(tmp_path, redis_backend.url)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start_firing(
    bundle: Path,
    backend: Backend,
    *crons: str,
    tick: int | None = None,
    signing_secret: str = "",
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        **NODE_ENV,
        "BACKEND_BASE": backend.url,
        "CRONHOOKS_TOKEN": TOKEN,
        "ENVIRONMENT": "production",
        "RETRY_MAX_ATTEMPTS": "3",
        "RETRY_INITIAL_DELAY": "200",
        "REQUEST_TIMEOUT": "20000",
        "LOG_LEVEL": "debug",
        # Follow the background job to its end, within the test's patience.
        "POLL_JOBS": "parties-import",
        "POLL_INTERVAL": "200",
        "POLL_BUDGET": "30000",
        "SCHEDULED_TIME": str(int(time.time() * 1000) if tick is None else tick),
        "SIGNING_SECRET": signing_secret,
    }
    return subprocess.Popen(
        ["node", str(WRANGLER / "e2e" / "fire.mjs"), str(bundle), *crons],
        cwd=WRANGLER,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def worker_lines(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def fire(
    bundle: Path, backend: Backend, *crons: str, tick: int | None = None
) -> list[dict[str, Any]]:
    return worker_lines(start_firing(bundle, backend, *crons, tick=tick))


def events(lines: list[dict[str, Any]], event: str, job: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == event and line["job"] == job]


def test_each_production_cron_runs_its_seed_job_with_the_right_options(
    bundle: Path, backend: Backend
) -> None:
    lines = fire(bundle, backend, *PRODUCTION_CRONS)

    results = {line["job"]: line for line in lines if line.get("event") == "result"}
    statuses = {job: line["status"] for job, line in results.items()}
    # parties-import runs in the background: accepted, then followed to its end.
    assert statuses == {
        **dict.fromkeys(PRODUCTION_CRONS.values(), 200),
        "parties-import": 202,
    }
    [finished] = events(lines, "run_finished", "parties-import")
    assert finished["status"] == "succeeded"
    assert finished["run_id"] == results["parties-import"]["run_id"]
    imports = backend.rows(
        "SELECT command, options FROM elections_importrun ORDER BY created_at"
    )
    elections = "uk_create_elections_from_every_election"

    def options(updated: bool, delta: int | None, current: bool) -> dict[str, Any]:
        return {
            "recently_updated": updated,
            "recently_updated_delta": delta,
            "check_current": current,
        }

    expected = [
        [elections, options(updated=True, delta=None, current=False)],
        ["parties_import_from_ec", {"post_to_slack": True}],
        [elections, options(updated=False, delta=None, current=True)],
        [elections, options(updated=True, delta=25, current=False)],
    ]
    received = [[row["command"], json.loads(row["options"])] for row in imports]
    canonical = partial(json.dumps, sort_keys=True)
    assert sorted(map(canonical, received)) == sorted(map(canonical, expected))
    runs = {run["job"]: run for run in backend.runs()}
    log = backend.log_lines()
    for target, result in results.items():
        job = target.split("?")[0]
        correlation = result["correlation_id"]
        assert runs[job]["status"] == "succeeded"
        assert runs[job]["correlation_id"] == correlation
        # The demo command's own stdlib log line carries the Worker's ID.
        assert any(
            line.get("correlation_id") == correlation
            and line.get("job") == job
            and line["name"].startswith("elections.")
            for line in log
        ), job


def test_a_backend_503_is_retried_and_then_succeeds(
    bundle: Path, backend: Backend, redis_backend: RedisServer
) -> None:
    redis_backend.stop()  # the lock backend is down: triggers get 503

    firing = start_firing(bundle, backend, "*/5 * * * *")
    wait_for(lambda: any(run["reason"] == "lock_unavailable" for run in backend.runs()))
    redis_backend.start()
    lines = worker_lines(firing)

    attempts = events(lines, "attempt", "ee-recent")
    [result] = events(lines, "result", "ee-recent")
    assert attempts[0]["status"] == 503
    assert attempts[-1]["status"] == 200
    assert result["outcome"] == "ok"
    assert result["attempt"] == len(attempts) >= 2
    runs = backend.runs()
    assert [run["status"] for run in runs][-1] == "succeeded"
    # The retries kept the call's correlation ID, so the history links them.
    assert {run["correlation_id"] for run in runs} == {result["correlation_id"]}


def test_a_409_is_not_retried(
    bundle: Path, backend: Backend, redis_backend: RedisServer
) -> None:
    holder = {
        "owner": "x",
        "run_id": "held-by-test",
        "since": datetime.now(timezone.utc).isoformat(),
    }
    with redis.Redis.from_url(redis_backend.url) as client:
        client.set("cronhooks:lock:ee-recent", json.dumps(holder), px=60_000)

    lines = fire(bundle, backend, "*/5 * * * *")

    [attempt] = events(lines, "attempt", "ee-recent")
    [result] = events(lines, "result", "ee-recent")
    assert attempt["status"] == 409
    assert result["outcome"] == "skipped"
    [run] = backend.runs()
    assert (run["status"], run["reason"]) == ("rejected", "already_running")
    assert run["correlation_id"] == result["correlation_id"]


def test_a_tick_delivered_twice_runs_its_job_once(
    bundle: Path, backend: Backend
) -> None:
    tick = int(time.time() * 1000)

    first = fire(bundle, backend, "33 23 * * *", tick=tick)
    again = fire(bundle, backend, "33 23 * * *", tick=tick)

    [original] = events(first, "result", "mop-recent?delta=25")
    [replayed] = events(again, "result", "mop-recent?delta=25")
    assert (original["status"], original["replayed"]) == (200, False)
    assert (replayed["status"], replayed["replayed"]) == (200, True)
    assert len(backend.rows("SELECT id FROM elections_importrun")) == 1
    assert [run["status"] for run in backend.runs()] == ["succeeded", "replayed"]


SIGNING_SECRET = "e2e-signing-secret-0123456789abcdefghijklmnopqrstuv"


@pytest.fixture
def signing_backend(tmp_path: Path, redis_backend: RedisServer) -> Iterator[Backend]:
    server = Backend(tmp_path, redis_backend.url, signing_secret=SIGNING_SECRET)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_signing_worker_signs_each_attempt_afresh(
    bundle: Path, signing_backend: Backend, redis_backend: RedisServer
) -> None:
    backend = signing_backend
    redis_backend.stop()  # the lock backend is down: the first attempts get 503

    firing = start_firing(bundle, backend, "*/5 * * * *", signing_secret=SIGNING_SECRET)
    wait_for(lambda: any(run["reason"] == "lock_unavailable" for run in backend.runs()))
    redis_backend.start()
    lines = worker_lines(firing)

    attempts = events(lines, "attempt", "ee-recent")
    assert attempts[0]["status"] == 503
    assert attempts[-1]["status"] == 200
    # Every attempt was accepted: none was refused as a replayed signature,
    # and each one's signature was verified and stored, once.
    assert 401 not in [attempt["status"] for attempt in attempts]
    assert len(backend.rows("SELECT digest FROM cronhooks_usedsignature")) == len(
        attempts
    )
    assert [run["status"] for run in backend.runs()][-1] == "succeeded"
