"""Worker processes for the lock tests: each runs triggers through run_job.

Run as ``python -m tests.workers JOB TIMES PARAMS_JSON``; prints one JSON line
per trigger. The parent passes its test database names and lock settings in
the environment (see tests/settings.py).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.db import connections


def worker_env(
    locks: Mapping[str, Any], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment for a worker: the parent's test databases and lock backend.

    ``extra`` may set CRONHOOKS_WORKER_STORE=postgres (keep the run history
    and keys on PostgreSQL) and CRONHOOKS_WORKER_IDEMPOTENCY_KEY.
    """
    names = {alias: connections[alias].settings_dict["NAME"] for alias in connections}
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": os.pathsep.join([".", "example_project"]),
        "CRONHOOKS_WORKER_DATABASES": json.dumps({k: str(v) for k, v in names.items()}),
        "CRONHOOKS_WORKER_LOCKS": json.dumps(locks),
        **(extra or {}),
    }


def start_worker(
    locks: Mapping[str, Any],
    job: str,
    times: int,
    params: Mapping[str, Any],
    barrier: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.Popen[str]:
    env = worker_env(locks, extra_env)
    if barrier is not None:
        env["CRONHOOKS_WORKER_BARRIER"] = str(barrier)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.workers", job, str(times), json.dumps(params)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def start_together(
    locks: Mapping[str, Any],
    count: int,
    job: str,
    times: int,
    params: Mapping[str, Any],
    barrier: Path,
    extra_env: Mapping[str, str] | None = None,
) -> list[subprocess.Popen[str]]:
    """Start ``count`` workers and release them at once when all are ready."""
    barrier.mkdir()
    workers = [
        start_worker(locks, job, times, params, barrier, extra_env)
        for _ in range(count)
    ]
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready-*"))) < count:
        assert time.monotonic() < deadline, "workers did not start"
        assert all(worker.poll() is None for worker in workers), "a worker died"
        time.sleep(0.02)
    (barrier / "go").touch()
    return workers


def results(
    process: subprocess.Popen[str], timeout: float = 120
) -> list[dict[str, Any]]:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out
    return [json.loads(line) for line in out.splitlines()]


def main(job: str, times: int, params: dict[str, Any]) -> None:
    import django

    django.setup()
    from cronhooks.models import JobRun
    from cronhooks.responses import outcome_status
    from cronhooks.runs import Trigger, run_job

    barrier = os.environ.get("CRONHOOKS_WORKER_BARRIER")
    if barrier:
        # Start together, so the workers really contend for the lock.
        Path(barrier, f"ready-{os.getpid()}").touch()
        while not Path(barrier, "go").exists():
            time.sleep(0.01)
    for number in range(times):
        outcome = run_job(
            Trigger(
                job=job,
                source=JobRun.Source.CLI,
                correlation_id=f"worker-{os.getpid()}-{number}",
                params=params,
                idempotency_key=os.environ.get("CRONHOOKS_WORKER_IDEMPOTENCY_KEY", ""),
            )
        )
        line = {
            "code": outcome_status(outcome),
            "fence": outcome.run.fencing_token,
            "error": outcome.rejection.code if outcome.rejection else None,
            "replayed": outcome.replay is not None,
            "run_id": outcome.run.run_id,
        }
        print(json.dumps(line), flush=True)
        # A breath between triggers, as real schedulers leave, so that one
        # worker does not re-take the lock the instant it frees it every time.
        time.sleep(random.uniform(0, 0.02))  # noqa: S311


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]))
