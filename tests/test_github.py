"""The GitHub Actions workflow, read back with a YAML parser: its crons and the
endpoints each one calls are the registry's, and the token is a secret."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from cronhooks.jobs import all_jobs
from cronhooks.schedules.export import ExportError, build_schedule, get_format
from tests.exports import BASE, exported_jobs, rendered
from tests.settings import TOKEN

JOBS: dict[str, Any] = exported_jobs(
    **{
        "check-current": {
            "command": "uk_create_elections_from_every_election",
            "schedule": "*/5 * * * *",
        }
    },
    echo={
        "command": "echo_params",
        # Defaults that need quoting in a URL, and in a GitHub expression.
        "params": {"word": {"type": "str", "default": "it's a/b&c"}},
        "schedule": "0 6 * * 1-5",
    },
)
EXPRESSION = re.compile(r"\$\{\{ fromJSON\('(.*)'\)\[github\.event\.schedule\] \}\}\Z")


@pytest.fixture(autouse=True)
def registry(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": JOBS}


def workflow(environment: str = "production") -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(rendered("github-actions", environment))
    return loaded


def registry_calls(environment: str) -> dict[str, list[dict[str, str]]]:
    """Cron -> the calls GitHub must make, read from the registry directly."""
    expected: dict[str, list[dict[str, str]]] = {}
    for job in all_jobs().values():
        cron = job.schedule_in(environment)
        if job.enabled and cron:
            expected.setdefault(cron, []).append(
                {"job": job.name, "path": f"/cron/{job.worker_target}"}
            )
    return expected


def matrix(loaded: dict[Any, Any]) -> dict[str, list[dict[str, str]]]:
    """The cron -> calls map inside the matrix's GitHub expression."""
    value = loaded["jobs"]["trigger"]["strategy"]["matrix"]["call"]
    match = EXPRESSION.match(value)
    assert match is not None, value
    # In a GitHub expression's string, '' is one quote.
    calls: dict[str, list[dict[str, str]]] = json.loads(
        match.group(1).replace("''", "'")
    )
    return calls


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_on_schedule_has_each_distinct_cron_of_the_registry_once(
    environment: str,
) -> None:
    loaded = workflow(environment)

    # "on", quoted, so that YAML 1.1 readers do not take it for True.
    crons = [entry["cron"] for entry in loaded["on"]["schedule"]]
    assert crons == list(registry_calls(environment))


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_each_cron_calls_the_registry_paths_with_their_defaults(
    environment: str,
) -> None:
    assert matrix(workflow(environment)) == registry_calls(environment)


def test_parameter_defaults_are_percent_encoded_in_the_path() -> None:
    calls = matrix(workflow())

    assert calls["0 6 * * 1-5"] == [
        {"job": "echo", "path": "/cron/echo?word=it%27s+a%2Fb%26c"}
    ]
    assert calls["33 23 * * *"] == [
        {"job": "mop-recent", "path": "/cron/mop-recent?delta=25"}
    ]


def test_skipped_jobs_are_in_neither_schedule_nor_matrix_but_in_a_comment() -> None:
    text = get_format("github-actions").render(
        build_schedule(
            get_format("github-actions"), all_jobs().values(), "production", BASE
        )
    )
    called = {
        call["job"] for calls in matrix(yaml.safe_load(text)).values() for call in calls
    }

    assert called == {"ee-recent", "check-current", "mop-recent", "echo"}
    assert "# Skipped paused (disabled).\n" in text
    assert "# Skipped by-hand (manual: no schedule in production).\n" in text


def test_one_job_per_endpoint_none_cancelling_the_others() -> None:
    trigger = workflow()["jobs"]["trigger"]

    assert trigger["strategy"]["fail-fast"] is False
    assert trigger["name"] == "${{ matrix.call.job }}"
    assert trigger["timeout-minutes"] == 15


def test_the_token_is_a_repository_secret_passed_through_the_environment() -> None:
    loaded = workflow()
    (step,) = loaded["jobs"]["trigger"]["steps"]

    assert step["env"]["CRONHOOKS_TOKEN"] == "${{ secrets.CRONHOOKS_TOKEN }}"
    assert '-H "Authorization: Bearer $CRONHOOKS_TOKEN"' in step["run"]
    assert TOKEN not in yaml.safe_dump(loaded)
    # Expressions only in env: none is pasted into the script, where a value
    # could inject shell.
    assert "${{" not in step["run"]


def test_curl_fails_on_an_error_answer_and_retries_under_one_idempotency_key() -> None:
    loaded = workflow()
    (step,) = loaded["jobs"]["trigger"]["steps"]
    run = step["run"]

    assert run.startswith("curl --fail-with-body ")
    assert "--retry 3 " in run
    assert "-X POST" in run
    assert '-H "Idempotency-Key: $IDEMPOTENCY_KEY"' in run
    assert step["env"]["IDEMPOTENCY_KEY"] == (
        "github-${{ github.run_id }}-${{ github.run_attempt }}"
    )
    assert run.endswith('"$CRONHOOKS_BASE_URL$CRONHOOKS_PATH"')
    assert loaded["env"]["CRONHOOKS_BASE_URL"] == BASE
    assert step["env"]["CRONHOOKS_PATH"] == "${{ matrix.call.path }}"


def test_the_workflow_token_gets_no_permissions() -> None:
    assert workflow()["permissions"] == {}


def test_more_calls_on_one_cron_than_a_matrix_takes_are_refused(
    settings: Any,
) -> None:
    jobs = {
        f"j{n}": {"command": "echo_params", "schedule": "0 3 * * *"} for n in range(257)
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}
    schedule = build_schedule(
        get_format("github-actions"), all_jobs().values(), "production", BASE
    )

    with pytest.raises(ExportError) as error:
        get_format("github-actions").render(schedule)

    assert str(error.value) == (
        "GitHub Actions refuses a matrix of over 256 jobs and an expression of "
        "over 21000 characters: '0 3 * * *' calls 257 jobs."
    )


def test_a_cron_map_longer_than_an_expression_takes_is_refused(
    settings: Any,
) -> None:
    # Fewer than 256 jobs per cron, but many long entries.
    jobs = {
        f"job-{n:03}-{'x' * 50}": {
            "command": "echo_params",
            "schedule": f"{n % 60} {n // 60} * * *",
        }
        for n in range(200)
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}
    schedule = build_schedule(
        get_format("github-actions"), all_jobs().values(), "production", BASE
    )

    with pytest.raises(
        ExportError,
        match=r"over 21000 characters: the cron -> endpoints map is \d+ characters\.$",
    ):
        get_format("github-actions").render(schedule)
