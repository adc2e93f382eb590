"""A job whose command cannot run is refused with 503, named by /health, and
stops no other job: gunicorn runs no system checks to catch it at deploy."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from cronhooks import targets
from cronhooks.checks import check_jobs
from cronhooks.jobs import all_jobs
from cronhooks.models import JobRun
from cronhooks.testing import trigger
from tests.conftest import JsonLines

pytestmark = pytest.mark.django_db


def with_job(settings: Any, **definition: Any) -> None:
    jobs = {**settings.CRONHOOKS["JOBS"], "nightly": definition}
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}


def refusal(response: Any) -> dict[str, Any]:
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "command_unavailable"
    return error


@pytest.mark.parametrize(
    ("definition", "reason", "named"),
    [
        pytest.param(
            {"command": "parties_import_from_ecc"},
            "unknown_command",
            "'parties_import_from_ecc', which does not exist",
            id="misspelt-command",
        ),
        pytest.param(
            {"command": "needs_a_missing_package"},
            "unknown_command",
            "'needs_a_missing_package', which cannot be loaded.",
            id="command-that-cannot-be-imported",
        ),
        pytest.param(
            {"command": "broken_arguments"},
            "unknown_command",
            "'broken_arguments', which cannot be loaded.",
            id="command-whose-add-arguments-raises",
        ),
        pytest.param(
            {"callable": "tests.testapp.broken_module.run"},
            "unknown_callable",
            "which cannot be imported.",
            id="callable-whose-module-raises",
        ),
        pytest.param(
            {"command": "echo_params", "args": ["--post-to-slack"]},
            "invalid_args",
            "passes --post-to-slack to 'echo_params'",
            id="fixed-args-its-parser-refuses",
        ),
        pytest.param(
            {"command": "echo_params", "options": {"post_to_slack": True}},
            "invalid_args",
            "option(s) post_to_slack that 'echo_params' does not accept",
            id="fixed-option-it-does-not-have",
        ),
        pytest.param(
            {"callable": "tests.testapp.jobs.pnig"},
            "unknown_callable",
            "cannot be imported",
            id="misspelt-callable",
        ),
        pytest.param(
            {"callable": "tests.testapp.jobs.PATH_PARAM"},
            "unknown_callable",
            "which is not callable",
            id="not-callable",
        ),
    ],
)
def test_a_job_that_cannot_run_is_503_recorded_and_named(
    client: Client,
    settings: Any,
    definition: dict[str, Any],
    reason: str,
    named: str,
) -> None:
    with_job(settings, **definition)

    error = refusal(trigger(client, "nightly"))

    assert error["details"] == {"reason": reason}
    assert named in error["message"]
    # The project's own exception text is for the logs, not the caller.
    assert "Error:" not in error["message"]
    run = JobRun.objects.get()
    assert (run.job, run.status, run.reason) == (
        "nightly",
        JobRun.Status.REJECTED,
        "command_unavailable",
    )


@pytest.mark.parametrize(
    "definition",
    [
        {"command": "parties_import_from_ecc"},
        {"command": "broken_arguments"},
        {"callable": "tests.testapp.broken_module.run"},
    ],
)
def test_the_other_jobs_keep_running(
    client: Client, settings: Any, definition: dict[str, Any]
) -> None:
    with_job(settings, **definition)

    refusal(trigger(client, "nightly"))
    response = trigger(client, "ping")

    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"


def test_health_is_not_ready_and_names_the_job_to_token_holders(
    client: Client, settings: Any, auth: dict[str, str]
) -> None:
    with_job(settings, command="parties_import_from_ecc")

    anonymous = client.get("/health")
    detail = client.get("/health", headers=auth)

    assert anonymous.status_code == detail.status_code == 503
    assert anonymous.json() == {"status": "unhealthy"}
    assert detail.json()["checks"]["jobs"] == {
        "ok": False,
        "detail": "command unavailable: nightly",
    }


def test_a_correct_registry_resolves_and_stays_healthy(
    client: Client, auth: dict[str, str]
) -> None:
    assert targets.unresolved() == {}
    assert client.get("/health", headers=auth).json()["checks"]["jobs"]["ok"]


def test_targets_are_resolved_once_per_process_and_logged_once(
    client: Client,
    settings: Any,
    json_lines: JsonLines,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_job(settings, command="parties_import_from_ecc")
    resolved: list[str] = []
    real = targets.problems

    def counting(job: Any) -> list[targets.TargetProblem]:
        resolved.append(job.name)
        return real(job)

    monkeypatch.setattr(targets, "problems", counting)

    for _ in range(3):
        refusal(trigger(client, "nightly"))
    client.get("/health")

    assert resolved.count("nightly") == 1
    logged = [
        line for line in json_lines() if line["message"] == "job_command_unavailable"
    ]
    assert [(line["job"], line["reason"]) for line in logged] == [
        ("nightly", "unknown_command")
    ]


def test_why_a_module_cannot_load_is_logged_with_its_traceback(
    client: Client, settings: Any, json_lines: JsonLines
) -> None:
    with_job(settings, callable="tests.testapp.broken_module.run")

    refusal(trigger(client, "nightly"))

    [line] = [
        line for line in json_lines() if line["message"] == "job_command_unavailable"
    ]
    assert "RuntimeError: settings.SOME_API_KEY is missing" in line["exc_info"]
    assert "broken_module.py" in line["exc_info"]


def test_a_required_option_given_in_options_is_what_call_command_takes(
    client: Client, settings: Any
) -> None:
    with_job(settings, command="needs_a_date", options={"date": "2026-05-07"})
    assert [e for e in check_jobs() if "'nightly'" in e.msg] == []

    response = trigger(client, "nightly")

    assert response.status_code == 200, response.content
    assert response.json()["output"] == "date=2026-05-07\n"


def test_a_fixed_registry_is_resolved_again_when_settings_change(
    client: Client, settings: Any
) -> None:
    with_job(settings, command="parties_import_from_ecc")
    refusal(trigger(client, "nightly"))

    with_job(settings, callable="tests.testapp.jobs.ping")

    assert trigger(client, "nightly").status_code == 200


@pytest.mark.parametrize(
    ("definition", "check_id"),
    [
        ({"command": "parties_import_from_ecc"}, "cronhooks.E005"),
        ({"command": "needs_a_missing_package"}, "cronhooks.E005"),
        ({"callable": "tests.testapp.jobs.pnig"}, "cronhooks.E005"),
        ({"command": "echo_params", "args": ["--post-to-slack"]}, "cronhooks.E006"),
        ({"command": "echo_params", "options": {"post_to_slack": 1}}, "cronhooks.E006"),
    ],
)
def test_manage_py_check_reports_the_same_problems(
    settings: Any, definition: dict[str, Any], check_id: str
) -> None:
    with_job(settings, **definition)
    job = all_jobs()["nightly"]

    errors = [error for error in check_jobs() if "'nightly'" in error.msg]

    assert [(error.id, error.msg) for error in errors] == [
        (check_id, str(problem)) for problem in targets.problems(job)
    ]


def test_a_required_option_left_to_the_args_is_still_required(settings: Any) -> None:
    with_job(settings, command="needs_a_date")
    job = all_jobs()["nightly"]

    [problem] = targets.problems(job)

    assert problem.reason == "invalid_args"
    assert "--date" in problem.message
    # The shared parser is left as it was found.
    [date] = [
        a
        for a in targets.command_parser("needs_a_date")[1]._actions
        if a.dest == "date"
    ]
    assert date.required


def test_jobs_that_differ_only_in_name_cost_the_parser_nothing_more(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A registry of thousands of jobs repeats a few commands and args: what
    # a parser makes of them is read once, whatever the number of jobs.
    reads: list[tuple[str, ...]] = []
    real = targets._parse_fixed_args

    def counting(command: str, args: tuple[str, ...], *rest: Any) -> Any:
        reads.append(args)
        return real(command, args, *rest)

    monkeypatch.setattr(targets, "_parse_fixed_args", counting)
    spec = {
        "command": "echo_params",
        "args": ["--loud"],
        "params": {"n": {"type": "int", "option": "count"}},
    }

    counts = []
    for copies in (1, 50):
        jobs = {f"copy-{number}": spec for number in range(copies)}
        settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}
        reads.clear()
        assert check_jobs() == []
        assert targets.unresolved() == {}
        counts.append(len(reads))

    assert counts[0] == counts[1] > 0


def test_jobs_that_share_command_and_args_but_not_options_are_read_apart(
    settings: Any,
) -> None:
    # The options a job gives as keywords decide which options the args
    # still have to give: here the required --date.
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "JOBS": {
            "dated": {"command": "needs_a_date", "options": {"date": "2026-05-07"}},
            "undated": {"command": "needs_a_date"},
        },
    }

    assert [
        (name, problem.reason) for name, problem in targets.unresolved().items()
    ] == [("undated", "invalid_args")]
    assert [error.msg for error in check_jobs()] == [
        str(targets.unresolved()["undated"])
    ]


@pytest.mark.parametrize(
    ("definition", "loader"),
    [
        ({"command": "needs_a_missing_package"}, "load_command"),
        ({"callable": "tests.testapp.broken_module.run"}, "import_string"),
    ],
)
def test_a_target_that_cannot_load_is_tried_once_for_all_its_jobs(
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    definition: dict[str, Any],
    loader: str,
) -> None:
    # A module that fails is imported again on every attempt.
    attempts: list[str] = []
    real = getattr(targets, loader)

    def counting(path: str, *args: Any) -> Any:
        attempts.append(path)
        return real(path, *args)

    monkeypatch.setattr(targets, loader, counting)
    jobs = {f"copy-{number}": definition for number in range(3)}
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}

    found = targets.unresolved()
    check_jobs()

    assert len(attempts) == 1
    assert sorted(found) == ["copy-0", "copy-1", "copy-2"]
    assert all(problem.error is not None for problem in found.values())
