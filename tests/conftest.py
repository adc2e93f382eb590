from __future__ import annotations

import contextlib
import io
import json
import logging
import logging.config
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import structlog
from django.conf import settings
from django.core.cache import caches
from django.test import Client

from cronhooks.log import configure_structlog, logging_config
from tests.servers import RedisServer, free_port
from tests.settings import TOKEN

JsonLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_lines() -> Iterator[JsonLines]:
    """Apply the shipped logging config, writing to a buffer instead of stdout."""
    stream = io.StringIO()
    config = logging_config(level="DEBUG")
    config["handlers"]["json"]["stream"] = stream
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    logging.config.dictConfig(config)
    configure_structlog()
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        structlog.reset_defaults()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


OTHER_TOKEN = "rotated-token-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Start each test with no requests counted.

    The rate limits stay on in the test settings, and every test client calls
    from 127.0.0.1: without this, counts would carry from test to test.
    """
    caches["default"].clear()


@pytest.fixture(autouse=True)
def _fresh_refusals() -> None:
    """Start each test with no refusal remembered to count on (refusals.py)."""
    from cronhooks.runs import refusals

    refusals.forget()


@pytest.fixture
def client() -> Client:
    # enforce_csrf_checks: prove the trigger view needs no CSRF token, as a
    # real scheduler sends none.
    return Client(enforce_csrf_checks=True)


# Real servers for the lock tests. Locally a missing server skips the tests
# that need it (saying why); in CI (CI=true) it fails them.


def require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must provide it)")
    pytest.skip(reason)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for the session, or the Redis at REDIS_URL if set.

    Never a developer's own Redis unless asked for: the tests leave lock,
    fencing and rate-limit keys behind, and some stop servers on purpose.
    """
    url = os.environ.get("REDIS_URL")
    if url:
        try:
            with redis.Redis.from_url(url, socket_connect_timeout=0.5) as client:
                client.ping()
        except redis.ConnectionError:
            require(False, f"no Redis answers at REDIS_URL={url}")
        yield url
        return
    require(
        shutil.which("redis-server") is not None,
        "REDIS_URL is unset and redis-server is not installed",
    )
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


# Cases that need PostgreSQL say so, and only they are left out without it:
# the modules that hold them use the default database only.
ON_POSTGRES = pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
LOCK_BACKENDS = ("default-db", pytest.param("postgres-db", marks=ON_POSTGRES), "redis")


def lock_config(kind: str, redis_url: str | None = None) -> dict[str, object]:
    if kind == "redis":
        prefix = f"cronhooks-test-{uuid.uuid4().hex}"
        return {
            "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
            "OPTIONS": {"URL": redis_url, "KEY_PREFIX": prefix},
        }
    alias = "postgres" if kind == "postgres-db" else "default"
    return {
        "BACKEND": "cronhooks.locks.database.DatabaseLockBackend",
        "OPTIONS": {"DATABASE": alias},
    }


@pytest.fixture(params=LOCK_BACKENDS)
def locks(request: pytest.FixtureRequest, settings: Any) -> dict[str, object]:
    """Each lock backend in turn, configured in CRONHOOKS['LOCKS']."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    config = lock_config(request.param, url)
    settings.CRONHOOKS = {**settings.CRONHOOKS, "LOCKS": config}
    return config


def _postgres_reachable() -> bool:
    import psycopg

    params = settings.DATABASES["postgres"]
    try:
        psycopg.connect(
            host=params["HOST"],
            port=params["PORT"],
            user=params["USER"],
            dbname=params["NAME"],
            connect_timeout=2,
        ).close()
    except psycopg.OperationalError:
        return False
    return True


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Without PostgreSQL (and not in CI), leave out the tests that need it.

    Deselected rather than skipped: pytest-django would otherwise try to
    create the PostgreSQL test database for the whole session and fail it.
    """

    def needs_postgres(item: pytest.Item) -> bool:
        marker = item.get_closest_marker("django_db")
        return marker is not None and "postgres" in marker.kwargs.get("databases", ())

    wanted = [item for item in items if needs_postgres(item)]
    if not wanted or os.environ.get("CI") or _postgres_reachable():
        return
    config.hook.pytest_deselected(items=wanted)
    items[:] = [item for item in items if not needs_postgres(item)]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"PostgreSQL is not reachable at 127.0.0.1:5432: left out {len(wanted)} "
            "tests that need it (CI runs them).",
            yellow=True,
        )


def running_record(job: str, *, ago: float = 0, fencing_token: int | None = 1) -> Any:
    """A run recorded as running ``ago`` seconds ago, as a holder leaves it."""
    from datetime import timedelta

    from django.utils import timezone

    from cronhooks.models import JobRun

    return JobRun.objects.create(
        job=job,
        status=JobRun.Status.RUNNING,
        source=JobRun.Source.HTTP,
        correlation_id=f"{job}-running",
        started_at=timezone.now() - timedelta(seconds=ago),
        fencing_token=fencing_token,
    )


class Webhook:
    """A real HTTP server on 127.0.0.1 standing in for Slack: keeps the JSON
    bodies POSTed to it, so alerts sent from other processes can be read."""

    def __init__(self) -> None:
        import http.server
        import threading

        received = self.received = []  # type: list[dict[str, Any]]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.close()


class PostgresProxy:
    """A TCP proxy to PostgreSQL that a test stops (every connection through it
    dies and new ones are refused, as when the server stops) and starts again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []

    def start(self) -> None:
        import threading

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), daemon=True
                ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def restart(self) -> None:
        """Start again, and drop this thread's dead connection through the
        proxy, as Django would between two requests."""
        from django.db import connections

        self.start()
        connections["proxied"].close()

    def stop(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone
            # would leave it accepting.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for end in self._open:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()
        self._open = []


@pytest.fixture
def proxied_history(settings: Any) -> Iterator[PostgresProxy]:
    """cronhooks' run history on PostgreSQL through a proxy the test controls."""
    from django.db import connections

    require(_postgres_reachable(), "PostgreSQL is not reachable")
    params = settings.DATABASES["postgres"]
    proxy = PostgresProxy((params["HOST"], int(params["PORT"])))
    proxy.start()
    connection = connections["proxied"]
    connection.close()
    connection.settings_dict["PORT"] = str(proxy.port)
    settings.DATABASE_ROUTERS = ["tests.routers.RunHistoryRouter"]
    try:
        yield proxy
    finally:
        proxy.stop()
        connection.close()
