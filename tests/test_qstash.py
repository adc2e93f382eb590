"""The QStash script: its schedule creation requests, read back with shlex,
name the registry's URLs and crons, with the parameters as a JSON body; run
by sh, each request carries the QStash token from the environment."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cronhooks.jobs import all_jobs
from tests.exports import BASE, exported_jobs, rendered
from tests.settings import TOKEN
from tests.stand_ins import CURL, StandIns

API = "https://qstash.upstash.io/v2/schedules/"
JOBS: dict[str, Any] = exported_jobs(
    echo={
        "command": "echo_params",
        "params": {
            "loud": {"type": "bool", "default": True},
            "word": {"type": "str", "default": "it's"},
            "count": {"type": "int"},
        },
        "schedule": "0 6 * * 1-5",
    },
)


@pytest.fixture(autouse=True)
def registry(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": JOBS}


def script(environment: str = "production") -> str:
    return rendered("qstash", environment)


def requests(arguments: list[list[str]]) -> dict[str, dict[str, Any]]:
    """Schedule id -> its destination, headers and body, from curl arguments."""
    found = {}
    for words in arguments:
        headers = dict(
            words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H"
        )
        data = words[words.index("--data") + 1] if "--data" in words else None
        found[headers.pop("Upstash-Schedule-Id")] = {
            "url": words[-1],
            "headers": headers,
            "body": None if data is None else json.loads(data),
        }
    return found


def written_requests(text: str) -> dict[str, dict[str, Any]]:
    commands = [
        shlex.split(c, comments=True) for c in text.replace("\\\n", " ").splitlines()
    ]
    return requests([words for words in commands if words and words[0] == "curl"])


def expected(environment: str) -> dict[str, dict[str, Any]]:
    found = {}
    for job in all_jobs().values():
        cron = job.schedule_in(environment)
        if not (job.enabled and cron):
            continue
        defaults = {
            name: param.default
            for name, param in job.params.items()
            if param.default is not None
        }
        headers = {
            "Authorization": "Bearer $QSTASH_TOKEN",
            "Upstash-Cron": cron,
            "Upstash-Method": "POST",
            "Upstash-Retries": "0",
        }
        if defaults:
            headers["Content-Type"] = "application/json"
        found[f"cronhooks-{environment}-{job.name}"] = {
            "url": f"{API}{BASE}/cron/{job.name}",
            "headers": headers,
            "body": defaults or None,
        }
    return found


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_each_job_gets_a_named_schedule_of_its_url_and_cron(environment: str) -> None:
    assert written_requests(script(environment)) == expected(environment)


def test_parameter_defaults_are_the_typed_json_body() -> None:
    found = written_requests(script())

    assert found["cronhooks-production-mop-recent"]["body"] == {"delta": 25}
    assert found["cronhooks-production-echo"]["body"] == {"loud": True, "word": "it's"}


def test_run_by_sh_each_request_carries_the_qstash_token(tmp_path: Path) -> None:
    stand_ins = StandIns(tmp_path)
    stand_ins.add("curl", CURL)

    result = subprocess.run(
        ["sh", "-c", script()],
        env={
            "PATH": f"{stand_ins.bin}{os.pathsep}{os.environ['PATH']}",
            "STAND_IN_LOG": str(stand_ins.log),
            "QSTASH_TOKEN": "qstash-token-for-the-test",
        },
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    sent = requests([call[1:] for call in stand_ins.calls()])
    want = expected("production")
    for request in want.values():
        request["headers"]["Authorization"] = "Bearer qstash-token-for-the-test"
    assert sent == want


def test_it_stops_before_any_request_without_the_qstash_token(tmp_path: Path) -> None:
    stand_ins = StandIns(tmp_path)
    stand_ins.add("curl", CURL)

    result = subprocess.run(
        ["sh", "-c", script()],
        env={
            "PATH": f"{stand_ins.bin}{os.pathsep}{os.environ['PATH']}",
            "STAND_IN_LOG": str(stand_ins.log),
        },
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0
    assert "QSTASH_TOKEN: set QSTASH_TOKEN to your QStash token" in result.stderr
    assert stand_ins.calls() == []


def test_no_cronhooks_token_is_sent_to_upstash() -> None:
    assert TOKEN not in script()
    assert "CRONHOOKS_TOKEN" not in script()
