"""The metrics agree across processes: jobs run by one process (a CLI run, a
gunicorn worker), and every gunicorn worker's scrape says the same, read
from the one run history."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db.models import Count
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from cronhooks.models import JobRun
from cronhooks.observability.metrics import counting_since
from tests.conftest import lock_config
from tests.servers import free_port
from tests.settings import TOKEN
from tests.workers import results, start_worker, worker_env

# Across processes, whatever the Python or Django version: the corner
# environments run it.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOCKS = lock_config("default-db")


class Gunicorn:
    """The test project under gunicorn with two workers, on the test database,
    logging which worker (pid) answered each request."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.access_log = directory / "access.log"
        self.output = (directory / "gunicorn.log").open("w")
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "django.core.wsgi:get_wsgi_application()",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--access-logfile",
                str(self.access_log),
                "--access-logformat",
                "%(p)s %(U)s %(s)s",
            ],
            env=worker_env(LOCKS),
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, headers=AUTH)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, "gunicorn exited"
            try:
                self.request("GET", "/health")
                return
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.1)

    def pids_that_answered(self, path: str) -> set[str]:
        lines = self.access_log.read_text().splitlines()
        return {line.split()[0] for line in lines if path in line}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.process.kill()
            self.process.wait()
        self.output.close()


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Gunicorn]:
    server = Gunicorn(tmp_path)
    try:
        server.wait_until_ready()
        yield server
    finally:
        server.stop()


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def test_every_worker_scrapes_the_same_counts_whichever_process_ran_the_jobs(
    gunicorn: Gunicorn,
) -> None:
    # Runs from another process (the CLI's path), and from gunicorn's workers.
    cli = start_worker(LOCKS, "ping", 3, {})
    for job, status in (("ping", 200), ("boom", 500), ("boom", 500), ("nope", 404)):
        assert gunicorn.request("POST", f"/cron/{job}")[0] == status
    assert [line["code"] for line in results(cli)] == [200, 200, 200]

    # Scrapes in parallel until both workers have answered some.
    answers: list[bytes] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(25):
            for status, body in pool.map(
                lambda _: gunicorn.request("GET", "/cron/metrics"), range(8)
            ):
                assert status == 200, body
                answers.append(body)
            if len(gunicorn.pids_that_answered("/cron/metrics")) == 2:
                break
    assert len(gunicorn.pids_that_answered("/cron/metrics")) == 2

    scraped = [samples(body) for body in answers]
    assert all(scrape == scraped[0] for scrape in scraped)
    expected = {
        (row["job"], row["status"]): row["runs"]
        for row in JobRun.objects.filter(
            started_at__gte=counting_since(timezone.now()), job__in=["ping", "boom"]
        )
        .values("job", "status")
        .annotate(runs=Count("id"))
    }
    assert expected == {("ping", "succeeded"): 4, ("boom", "failed"): 2}
    counted = {
        (dict(labels)["job"], dict(labels)["status"]): value
        for (name, labels), value in scraped[0].items()
        if name == "cronhooks_runs_total"
    }
    assert counted == expected
    refused = ("cronhooks_refusals_total", (("job", ""), ("reason", "unknown_job")))
    assert scraped[0][refused] == 1
    assert scraped[0][("cronhooks_run_duration_seconds_count", (("job", "ping"),))] == 4
