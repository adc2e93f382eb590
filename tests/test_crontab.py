"""The crontab: its lines, read as cron reads them, call the registry's URLs on
its crons; run by sh against the example project under gunicorn, a line runs
its job, quietly, with the token from the environment or a file that no
argument ever shows."""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from cronhooks.jobs import all_jobs
from tests.exports import BASE, exported_jobs, rendered
from tests.servers import free_port
from tests.settings import TOKEN

ROOT = Path(__file__).resolve().parent.parent
JOBS: dict[str, Any] = exported_jobs(
    echo={
        "command": "echo_params",
        # A default whose URL encoding has % in it, which cron would cut at.
        "params": {"word": {"type": "str", "default": "a/b"}},
        "schedule": "0 6 * * 1-5",
    },
)
LINE = re.compile(r"(?P<cron>(?:\S+ ){5})(?P<command>.*)")


def cron_command(command: str) -> tuple[str, str]:
    """The shell command and standard input cron makes of a line's command.

    crontab(5): an unescaped % ends the command, the text after it (each
    further % a newline) being its standard input; \\% is a literal %.
    """
    parts = re.split(r"(?<!\\)%", command)
    shell, stdin = parts[0], "\n".join(parts[1:])
    return shell.replace("\\%", "%"), stdin.replace("\\%", "%")


def job_lines(text: str) -> dict[str, str]:
    """Cron -> shell command of each job line (not comments or variables)."""
    found = {}
    for line in text.splitlines():
        if line.startswith("#") or re.match(r"[A-Z_]+=", line):
            continue
        match = LINE.fullmatch(line)
        assert match is not None, line
        shell, stdin = cron_command(match["command"])
        assert stdin == "", f"cron would cut this line at a %: {line}"
        found[match["cron"].strip()] = shell
    return found


def url_of(shell: str) -> str:
    urls = [word for word in shlex.split(shell) if word.startswith(("http:", "https:"))]
    assert len(urls) == 1, shell
    return urls[0].rstrip(")")


class TestTheLines:
    @pytest.fixture(autouse=True)
    def registry(self, settings: Any) -> None:
        settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": JOBS}

    def crontab(self, environment: str = "production") -> str:
        return rendered("crontab", environment)

    @pytest.mark.parametrize("environment", ["production", "staging"])
    def test_each_line_calls_a_registry_url_on_its_cron(self, environment: str) -> None:
        lines = job_lines(self.crontab(environment))

        assert {cron: url_of(shell) for cron, shell in lines.items()} == {
            job.schedule_in(environment): f"{BASE}/cron/{job.worker_target}"
            for job in all_jobs().values()
            if job.enabled and job.schedule_in(environment)
        }

    def test_every_percent_sign_is_escaped_for_cron(self) -> None:
        lines = job_lines(self.crontab())

        assert url_of(lines["0 6 * * 1-5"]) == f"{BASE}/cron/echo?word=a%2Fb"
        assert "date -u +%Y%m%dT%H%MZ" in lines["0 6 * * 1-5"]

    def test_the_lines_run_in_utc_under_sh(self) -> None:
        text = self.crontab()

        assert "\nSHELL=/bin/sh\nCRON_TZ=Etc/UTC\n" in text

    def test_no_token_is_written_and_none_is_passed_as_an_argument(self) -> None:
        text = self.crontab()

        assert TOKEN not in text
        for shell in job_lines(text).values():
            # The header goes to curl on its standard input (-H @-), from
            # printf, a shell builtin: no process has the token in its argv.
            assert "printf 'Authorization: Bearer %s\\n' " in shell
            assert "-H @-" in shell
            assert "Authorization" not in shell.split("| curl", 1)[1]

    def test_curl_fails_on_an_error_answer_and_retries(self) -> None:
        for shell in job_lines(self.crontab()).values():
            assert "curl --fail-with-body " in shell
            assert "--retry 3 " in shell
            assert "flock" not in shell


# The lines run against the example project.


class App:
    """The example project under gunicorn, with its own SQLite database."""

    def __init__(self, directory: Path) -> None:
        self.database = directory / "db.sqlite3"
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CRONHOOKS_")},
            "DJANGO_SETTINGS_MODULE": "example.settings",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "example_project")]),
            "CRONHOOKS_TOKEN": TOKEN,
            "SQLITE_PATH": str(self.database),
            "DJANGO_DEBUG": "false",
        }
        for name in ("DATABASE_URL", "REDIS_URL", "COVERAGE_PROCESS_START"):
            self.env.pop(name, None)
        self.log = directory / "gunicorn.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def django(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def __enter__(self) -> App:
        self.django("migrate", "-v", "0")
        self._log = self.log.open("w")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "example.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
            ],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not self._answers():
            assert self._process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=30)
        self._log.close()

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2):  # noqa: S310
                return True
        except OSError:
            return False

    def runs(self) -> list[dict[str, Any]]:
        with closing(sqlite3.connect(self.database)) as connection:
            connection.row_factory = sqlite3.Row
            return [
                dict(row)
                for row in connection.execute(
                    "SELECT job, status, params, idempotency_key FROM "
                    "cronhooks_jobrun ORDER BY started_at"
                )
            ]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with App(tmp_path_factory.mktemp("app")) as running:
        yield running


@pytest.fixture(scope="module")
def lines(app: App) -> dict[str, str]:
    """Job -> its line of the example project's own export, as sh runs it.

    Each test runs another job: the Idempotency-Key, scoped per job, names
    the minute, which the tests share.
    """
    text = app.django(
        "cronhooks", "schedule", "export", "--format", "crontab", "--base-url", app.url
    )
    return {
        url_of(shell).rpartition("/cron/")[2].partition("?")[0]: shell
        for shell in job_lines(text).values()
    }


def run_line(shell: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", shell],
        env={"PATH": os.environ["PATH"], "HOME": str(home), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def away_from_a_minute_boundary() -> None:
    """The Idempotency-Key names the minute: keep two runs in one."""
    while datetime.now(timezone.utc).second > 45:
        time.sleep(1)


@pytest.mark.slow
def test_a_line_runs_its_job_quietly_with_the_token_from_the_environment(
    app: App, lines: dict[str, str], tmp_path: Path
) -> None:
    before = len(app.runs())

    result = run_line(lines["mop-recent"], tmp_path, CRONHOOKS_TOKEN=TOKEN)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    (run,) = app.runs()[before:]
    assert (run["job"], run["status"]) == ("mop-recent", "succeeded")
    assert json.loads(run["params"]) == {"delta": 25}
    minute = datetime.now(timezone.utc).strftime("%Y%m%dT%H")
    assert run["idempotency_key"].startswith(f"crontab-{minute}")


@pytest.mark.slow
def test_the_token_may_come_from_a_file_and_one_tick_runs_once(
    app: App, lines: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / ".cronhooks-token").write_text(TOKEN + "\n")
    before = len(app.runs())
    away_from_a_minute_boundary()

    first = run_line(lines["check-current"], tmp_path)
    # The same crontab on a second host, firing the same tick.
    second = run_line(lines["check-current"], tmp_path)

    assert (first.returncode, first.stderr) == (0, "")
    assert (second.returncode, second.stderr) == (0, "")
    statuses = [(run["job"], run["status"]) for run in app.runs()[before:]]
    assert statuses == [("check-current", "succeeded"), ("check-current", "replayed")]


@pytest.mark.slow
def test_a_refused_call_fails_with_cronhooks_answer_on_stderr(
    app: App, lines: dict[str, str], tmp_path: Path
) -> None:
    wrong = "wrong-token-0123456789abcdefghijklmnopqrstuv"
    before = len(app.runs())

    result = run_line(lines["ee-recent"], tmp_path, CRONHOOKS_TOKEN=wrong)

    assert result.returncode == 22  # curl's "HTTP error" exit code
    assert result.stdout == ""
    assert "The requested URL returned error: 401" in result.stderr
    answer = json.loads(result.stderr.splitlines()[-1])
    assert answer["error"]["code"] == "unauthorized"
    assert wrong not in result.stderr
    assert app.runs()[before:] == []


@pytest.mark.slow
def test_the_example_projects_lines_are_its_scheduled_jobs(
    lines: dict[str, str],
) -> None:
    assert sorted(lines) == [
        "check-current",
        "ee-recent",
        "mop-recent",
        "parties-import",
    ]
