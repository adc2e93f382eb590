"""Throwaway servers on 127.0.0.1, for the tests and the benchmarks alike."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A throwaway redis-server that tests may stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        with redis.Redis.from_url(self.url, socket_connect_timeout=0.2) as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class SentryIngest:
    """A real HTTP server standing in for Sentry's ingest: keeps each envelope
    POSTed to it, parsed, so check-ins sent from any process can be read.

    ``status`` is what it answers (a test sets 500 for an ingest that fails),
    after ``delay`` seconds (a slow ingest: the SDK's queue backs up).
    """

    def __init__(self, public_key: str) -> None:
        import http.server
        import threading

        self.status = 200
        self.delay = 0.0
        self.envelopes: list[Envelope] = []
        ingest = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                ingest.envelopes.append(
                    Envelope(self.path, dict(self.headers.items()), body)
                )
                time.sleep(ingest.delay)
                # A process ended meanwhile (a worker's os._exit) hears nothing.
                with contextlib.suppress(ConnectionError):
                    self.send_response(ingest.status)
                    self.end_headers()
                    self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://{public_key}@127.0.0.1:{self.server.server_address[1]}/1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def check_ins(self) -> list[dict[str, Any]]:
        return [
            payload
            for envelope in self.envelopes
            for kind, payload in envelope.items
            if kind == "check_in"
        ]

    def wait_for_check_ins(
        self, count: int, timeout: float = 20
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.check_ins()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.check_ins()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Envelope:
    """A Sentry envelope: a header line, then items of a header line and a
    payload each (of the header's ``length`` in bytes, or up to the newline)."""

    def __init__(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.path = path
        self.headers = headers
        self.body = body
        header, _, rest = body.partition(b"\n")
        self.header: dict[str, Any] = json.loads(header)
        self.items: list[tuple[str, dict[str, Any]]] = []
        while rest.strip():
            item_line, _, rest = rest.partition(b"\n")
            item = json.loads(item_line)
            if "length" in item:
                payload, rest = rest[: item["length"]], rest[item["length"] + 1 :]
            else:
                payload, _, rest = rest.partition(b"\n")
            self.items.append((item["type"], json.loads(payload)))
