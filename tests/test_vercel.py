"""vercel.json: its crons, read back with json, are the registry's paths and
crons; the rest of the file is the project's and stays as it was."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from cronhooks.jobs import all_jobs
from cronhooks.schedules.export import ExportError, build_schedule, get_format
from tests.exports import exported_jobs

JOBS: dict[str, Any] = exported_jobs()
PROJECT = {
    "$schema": "https://openapi.vercel.sh/vercel.json",
    "rewrites": [{"source": "/(.*)", "destination": "/api/index"}],
}


@pytest.fixture(autouse=True)
def registry(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": JOBS}


def export(*args: str) -> str:
    out = StringIO()
    call_command(
        "cronhooks",
        "schedule",
        "export",
        "--format",
        "vercel",
        *args,
        stdout=out,
        stderr=StringIO(),
    )
    return out.getvalue()


def registry_crons(environment: str) -> list[dict[str, str]]:
    return [
        {"path": f"/cron/{job.worker_target}", "schedule": job.schedule_in(environment)}
        for job in all_jobs().values()
        if job.enabled and job.schedule_in(environment)
    ]


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_the_crons_are_the_registry_paths_and_crons(environment: str) -> None:
    config = json.loads(export("--environment", environment))

    assert config == {"crons": registry_crons(environment)}


def test_writing_into_a_vercel_json_replaces_only_its_crons(tmp_path: Path) -> None:
    target = tmp_path / "vercel.json"
    target.write_text(
        json.dumps({**PROJECT, "crons": [{"path": "/old", "schedule": "0 0 * * *"}]})
    )

    export("--output", str(target))

    assert json.loads(target.read_text()) == {
        **PROJECT,
        "crons": registry_crons("production"),
    }
    # The keys keep their order; the crons stay where they were.
    assert list(json.loads(target.read_text())) == ["$schema", "rewrites", "crons"]


def test_check_compares_the_crons_only(tmp_path: Path) -> None:
    target = tmp_path / "vercel.json"
    # Written by hand, with its own indentation and key order.
    target.write_text(
        json.dumps({"crons": registry_crons("production"), **PROJECT}, indent=4)
    )

    assert (
        export("--check", str(target))
        == f"{target} is in sync with the job registry.\n"
    )


def test_check_fails_when_a_cron_drifted(tmp_path: Path) -> None:
    target = tmp_path / "vercel.json"
    crons = registry_crons("production")
    crons[1]["path"] = "/cron/mop-recent"
    target.write_text(json.dumps({**PROJECT, "crons": crons}, indent=2) + "\n")

    with pytest.raises(CommandError) as error:
        export("--check", str(target))

    assert '-      "path": "/cron/mop-recent",' in str(error.value)
    assert '+      "path": "/cron/mop-recent?delta=25",' in str(error.value)


def test_check_fails_when_the_file_has_no_crons(tmp_path: Path) -> None:
    target = tmp_path / "vercel.json"
    target.write_text(json.dumps(PROJECT))

    with pytest.raises(CommandError, match="has drifted"):
        export("--check", str(target))


@pytest.mark.parametrize(
    ("content", "reason"),
    [("{not json", "is not valid JSON"), ("[]", "is not a JSON object")],
)
def test_a_file_that_is_not_a_json_object_is_a_clear_error(
    tmp_path: Path, content: str, reason: str
) -> None:
    target = tmp_path / "vercel.json"
    target.write_text(content)

    with pytest.raises(CommandError, match=reason):
        export("--check", str(target))
    with pytest.raises(CommandError, match=reason):
        export("--output", str(target))
    assert target.read_text() == content


def test_vercel_calls_paths_so_a_base_url_is_not_used() -> None:
    schedule = build_schedule(
        get_format("vercel"), all_jobs().values(), "production", ""
    )

    assert "https://" not in get_format("vercel").render(schedule)


def test_names_vercel_cannot_read_are_refused(settings: Any) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {"weekly": {"command": "echo_params", "schedule": "0 6 * * MON"}},
    }

    with pytest.raises(ExportError, match="'weekly' runs on '0 6 \\* \\* MON'"):
        build_schedule(get_format("vercel"), all_jobs().values(), "production", "")
