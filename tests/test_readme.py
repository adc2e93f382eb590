"""The README's quickstart, run exactly as written.

Steps 2 and 3 run in a scratch copy of the example project (so no database is
left in the checkout), with this checkout's virtualenv; step 1 is how that
virtualenv was made, and step 4 is the command running this test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# The same on every Python and Django: run in the corner environments.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def quickstart_blocks() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return [
        "\n".join(line.strip() for line in block.splitlines() if line.strip())
        for block in blocks
    ]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv in the checkout: the quickstart's step 1 was not run")
    shutil.copytree(
        ROOT / "example_project",
        tmp_path / "example_project",
        ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__"),
    )
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    return tmp_path


@pytest.fixture
def server(scratch: Path) -> Iterator[Path]:
    if not port_is_free(8000):
        if os.environ.get("CI"):
            pytest.fail("port 8000, which the README uses, is taken")
        pytest.skip("port 8000, which the README uses, is taken")
    # A new user's shell: none of the variables this test run has set.
    unset = {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "CRONHOOKS_TOKEN"}
    env = {key: value for key, value in os.environ.items() if key not in unset}
    log = (scratch / "server.log").open("w")
    process = subprocess.Popen(
        ["bash", "-c", quickstart_blocks()[1]],
        cwd=scratch,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # runserver's autoreloader forks a child
    )
    try:
        deadline = time.monotonic() + 60
        while port_is_free(8000):
            assert process.poll() is None, (scratch / "server.log").read_text()
            assert time.monotonic() < deadline, "the example project did not start"
            time.sleep(0.1)
        yield scratch
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        log.close()


def test_the_quickstart_commands_work_as_written(server: Path) -> None:
    blocks = quickstart_blocks()
    assert len(blocks) == 5
    assert blocks[0] == (
        "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' "
        "&& (cd cronhooks/wrangler && npm ci)"
    )
    assert blocks[4] == ".venv/bin/pytest"

    result = subprocess.run(
        ["bash", "-c", blocks[2]],
        cwd=server,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    answers = [json.loads(line) for line in result.stdout.splitlines()]
    statuses = [answer["status"] for answer in answers]
    # parties-import is a background job: queued, then run by the task worker.
    assert statuses == ["succeeded", "queued", "succeeded", "succeeded", "healthy"], [
        answer.get("error") for answer in answers
    ]
    assert [answer["job"] for answer in answers[:4]] == [
        "ee-recent",
        "parties-import",
        "check-current",
        "mop-recent",
    ]
    assert answers[3]["params"] == {"delta": 25}
    assert all(check["ok"] for check in answers[4]["checks"].values())
    # The server's own log lines (the task worker's too) carry each run's
    # correlation ID.
    log = (server / "server.log").read_text()
    for answer in answers[:4]:
        assert f'"correlation_id": "{answer["correlation_id"]}"' in log

    # In the same terminal as step 3, where the token was exported.
    export = blocks[2].splitlines()[0]
    assert export.startswith("export CRONHOOKS_TOKEN=")
    follow = export + "\n" + blocks[3].replace("RUN_ID", answers[1]["run_id"])
    deadline = time.monotonic() + 30
    while True:
        run = json.loads(
            subprocess.run(
                ["bash", "-c", follow],
                cwd=server,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
        )
        if run["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, run
        time.sleep(0.2)
    assert run["status"] == "succeeded", run.get("error")
    assert run["output"].startswith("imported")
