"""The benchmark suite runs end to end and measures every case it reports.

Its --smoke mode is a proof that it runs, not a measurement: nothing here
asserts a timing, only that each case produced figures (and the one rule a
burst must keep whatever the machine: exactly one run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import suite

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="needs redis-server"
    ),
]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench") / "smoke.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--json", str(output)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert "(cronhooks - naive view) / floor" in done.stdout
    result: dict[str, Any] = json.loads(output.read_text())
    return result


def measured(figures: dict[str, Any]) -> bool:
    return bool(figures["n"] > 0 and figures["p50_ms"] > 0 and figures["p99_ms"] > 0)


def test_every_latency_case_and_floor_is_measured(smoke: dict[str, Any]) -> None:
    assert set(smoke["latency"]) == {
        "bare Django view",
        "naive view",
        "naive view + INSERT/UPDATE",
        "cronhooks, DB lease",
        "cronhooks, Redis lock",
        "/health detail, DB lease",
    }
    assert all(measured(figures) for figures in smoke["latency"].values())
    assert set(smoke["floor"]) >= {"floor, db", "floor, redis"}
    assert all(measured(figures) for figures in smoke["floor"].values())
    assert set(smoke["ratios"]) == {"cronhooks, DB lease", "cronhooks, Redis lock"}


def test_round_trips_are_counted_per_lock_backend(smoke: dict[str, Any]) -> None:
    trips = smoke["round_trips"]
    assert trips["trigger, database lock"]["sql_queries"] > 0
    assert trips["trigger, database lock"]["redis_commands"] == 0
    assert trips["trigger, redis lock"]["redis_commands"] > 0
    assert trips["/health detail, database lock"]["sql_queries"] > 0
    assert trips["/cron/metrics, database lock"]["status"] == 200
    assert trips["/cron/metrics, database lock"]["sql_queries"] == 3


def test_a_burst_runs_its_job_once_per_lock_backend(smoke: dict[str, Any]) -> None:
    for figures in smoke["burst"].values():
        assert figures["runs"] == 1
        assert figures["triggers"]["requests"] == smoke["settings"]["burst"]
        assert figures["bare"]["p99_ms"] is not None


def test_floods_scale_and_prune_produce_figures(smoke: dict[str, Any]) -> None:
    assert set(smoke["flood"]) == {
        "naive view",
        "cronhooks, DB lease",
        "cronhooks, Redis lock",
    }
    assert all(figures["requests"] > 0 for figures in smoke["flood"].values())
    for label in ("cronhooks, DB lease", "cronhooks, Redis lock"):
        figures = smoke["flood"][label]
        answered = sum(
            count for status, count in figures["statuses"].items() if status.isdigit()
        )
        # Every answered trigger is in the history's counts; one the client
        # gave up on may be too.
        assert answered <= figures["history_attempts"] <= figures["requests"]
    jobs = smoke["jobs"]
    assert jobs["check_ms"] > 0
    assert jobs["check_4_jobs_ms"] > 0
    for when in ("empty history", "full history"):
        assert jobs[when]["first_trigger_status"] == 200
        assert jobs[when]["health_detail"]["bytes"] > 0
    assert set(smoke["history"]["latency"]) == set(smoke["history"]["before"])
    assert "/cron/metrics, DB lease" in smoke["history"]["latency"]
    assert smoke["prune"]["rows_deleted"] > 0


def test_only_measures_the_sections_named_in_the_suites_order() -> None:
    assert suite.sections("flood, burst") == ("burst", "flood")
    with pytest.raises(argparse.ArgumentTypeError, match="unknown sections fluod"):
        suite.sections("burst,fluod")
    with pytest.raises(argparse.ArgumentTypeError, match="none given"):
        suite.sections(",")


def test_the_table_shows_only_the_sections_measured(smoke: dict[str, Any]) -> None:
    partial = {
        key: value
        for key, value in smoke.items()
        if key not in ("latency", "floor", "ratios", "jobs", "history", "prune")
    }
    text = suite.table(partial)
    assert "burst: " in text
    assert "flood: " in text
    assert "floor of the extra work" not in text
    assert "prune: " not in text
