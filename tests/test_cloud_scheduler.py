"""Cloud Scheduler. The script: its gcloud commands, read back with shlex,
call the registry's URLs on its crons in UTC with an OIDC token; run by sh, it
creates the jobs that do not exist and updates those that do. The Terraform,
read back with python-hcl2: the same jobs as resources."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from cronhooks.jobs import all_jobs
from cronhooks.schedules.cloud_scheduler import hcl_string
from tests.exports import BASE, exported_jobs, rendered
from tests.stand_ins import GCLOUD, StandIns

ACCOUNT = "scheduler@project.iam.gserviceaccount.com"
JOBS: dict[str, Any] = exported_jobs()


@pytest.fixture(autouse=True)
def registry(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": JOBS}


def script(environment: str = "production") -> str:
    return rendered("cloud-scheduler", environment)


def upserts(text: str) -> dict[str, dict[str, str]]:
    """Job id -> its flags, from each `upsert ID --flag=value ...` command."""
    commands = text.replace("\\\n", " ").splitlines()
    found = {}
    for command in commands:
        words = shlex.split(command, comments=True)
        if words and words[0] == "upsert":
            found[words[1]] = dict(word[2:].split("=", 1) for word in words[2:])
    return found


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_each_job_is_called_at_its_url_on_its_cron_in_utc(environment: str) -> None:
    jobs = upserts(script(environment))

    assert jobs == {
        f"cronhooks-{environment}-{job.name}": {
            "schedule": job.schedule_in(environment),
            "time-zone": "Etc/UTC",
            "uri": f"{BASE}/cron/{job.worker_target}",
            "http-method": "POST",
            # Left for the shell to expand: shlex has taken the quotes off.
            "oidc-service-account-email": "$CRONHOOKS_SERVICE_ACCOUNT",
            "oidc-token-audience": BASE,
            "max-retry-attempts": "0",
        }
        for job in all_jobs().values()
        if job.enabled and job.schedule_in(environment)
    }


def test_the_path_keeps_its_defaults() -> None:
    assert upserts(script())["cronhooks-production-mop-recent"]["uri"] == (
        f"{BASE}/cron/mop-recent?delta=25"
    )


@pytest.fixture
def gcloud(tmp_path: Path) -> StandIns:
    stand_ins = StandIns(tmp_path)
    stand_ins.add("gcloud", GCLOUD)
    return stand_ins


def run(text: str, stand_ins: StandIns, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", text],
        env={
            "PATH": f"{stand_ins.bin}{os.pathsep}{os.environ['PATH']}",
            "STAND_IN_LOG": str(stand_ins.log),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_run_by_sh_it_creates_new_jobs_and_updates_existing_ones(
    gcloud: StandIns,
) -> None:
    result = run(
        script(),
        gcloud,
        CRONHOOKS_LOCATION="europe-west2",
        CRONHOOKS_SERVICE_ACCOUNT=ACCOUNT,
        EXISTING_JOBS="cronhooks-production-mop-recent",
    )

    assert result.returncode == 0, result.stderr
    changes = [call for call in gcloud.calls() if call[3] != "describe"]
    assert [call[:5] for call in changes] == [
        ["gcloud", "scheduler", "jobs", "create", "http"],
        ["gcloud", "scheduler", "jobs", "update", "http"],
    ]
    create, update = changes
    assert create[5:8] == [
        "cronhooks-production-ee-recent",
        "--location=europe-west2",
        "--schedule=*/5 * * * *",
    ]
    assert f"--oidc-service-account-email={ACCOUNT}" in create
    assert f"--uri={BASE}/cron/mop-recent?delta=25" in update


def test_it_stops_before_any_gcloud_call_without_its_settings(
    gcloud: StandIns,
) -> None:
    result = run(script(), gcloud, CRONHOOKS_LOCATION="europe-west2")

    assert result.returncode != 0
    assert "CRONHOOKS_SERVICE_ACCOUNT: set it to the service account email" in (
        result.stderr
    )
    assert gcloud.calls() == []


# The same jobs as Terraform.


def terraform(environment: str = "production") -> str:
    return rendered("cloud-scheduler-terraform", environment)


def value(parsed: Any) -> Any:
    """python-hcl2 keeps a string's quotes (and a block's marker): drop them."""
    if isinstance(parsed, dict):
        return {
            value(key): value(item)
            for key, item in parsed.items()
            if key != "__is_block__"
        }
    if isinstance(parsed, list):
        return [value(item) for item in parsed]
    if isinstance(parsed, str) and parsed.startswith('"'):
        return json.loads(parsed)
    return parsed


def resources(text: str) -> dict[str, dict[str, Any]]:
    parsed = value(hcl2.loads(text))
    found = {}
    for block in parsed["resource"]:
        ((kind, named),) = block.items()
        assert kind == "google_cloud_scheduler_job"
        found.update(named)
    return found


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_terraform_has_a_resource_per_job_calling_its_url_on_its_cron(
    environment: str,
) -> None:
    assert resources(terraform(environment)) == {
        f"cronhooks-{environment}-{job.name}": {
            "name": f"cronhooks-{environment}-{job.name}",
            "region": "${var.cronhooks_region}",
            "schedule": job.schedule_in(environment),
            "time_zone": "Etc/UTC",
            "retry_config": [{"retry_count": 0}],
            "http_target": [
                {
                    "http_method": "POST",
                    "uri": f"{BASE}/cron/{job.worker_target}",
                    "oidc_token": [
                        {
                            "service_account_email": (
                                "${var.cronhooks_service_account_email}"
                            ),
                            "audience": BASE,
                        }
                    ],
                }
            ],
        }
        for job in all_jobs().values()
        if job.enabled and job.schedule_in(environment)
    }


def test_terraform_declares_the_variables_it_uses() -> None:
    variables = value(hcl2.loads(terraform()))["variable"]

    assert [next(iter(variable)) for variable in variables] == [
        "cronhooks_region",
        "cronhooks_service_account_email",
    ]


def test_terraform_strings_cannot_start_a_template() -> None:
    assert hcl_string("a${b}%{c}") == '"a$${b}%%{c}"'


def test_terraform_is_formatted_as_terraform_fmt_writes_it() -> None:
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed (python-hcl2 reads it above)")

    result = subprocess.run(
        ["terraform", "fmt", "-check", "-"],
        input=terraform(),
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout
