"""cronhooks.checks: every configuration mistake has a stable system check id."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import CheckMessage
from django.core.checks.registry import registry
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tests.settings import CRONHOOKS

TOKEN = "t" * 32


def check_errors(cronhooks: object) -> list[CheckMessage]:
    """Run the registered cronhooks checks (not the model checks, which need a DB)."""
    with override_settings(CRONHOOKS=cronhooks):
        return [
            message
            for check in registry.get_checks(include_deployment_checks=True)
            if check.__module__ == "cronhooks.checks"
            for message in check(app_configs=None, databases=None)
        ]


def check_error_codes(cronhooks: object) -> list[str]:
    return [str(message.id) for message in check_errors(cronhooks)]


def with_job(spec: object, name: str = "nightly") -> dict[str, Any]:
    return {"TOKENS": [TOKEN], "JOBS": {name: spec}}


def test_test_settings_have_no_cronhooks_errors() -> None:
    assert check_error_codes(CRONHOOKS) == []


@pytest.mark.django_db  # Django 6.1's model checks ask the database
def test_call_command_check_runs_the_cronhooks_checks() -> None:
    with (
        override_settings(CRONHOOKS={}),
        pytest.raises(SystemCheckError) as excinfo,
    ):
        call_command("check")

    assert "cronhooks.E001" in str(excinfo.value)
    assert "No bearer token is configured" in str(excinfo.value)


# E001, E002: tokens


@pytest.mark.parametrize(
    "cronhooks",
    [
        pytest.param({}, id="missing"),
        pytest.param({"TOKENS": []}, id="empty-list"),
        pytest.param({"TOKENS": ""}, id="empty-str"),
        pytest.param({"TOKENS": ["", None]}, id="only-blanks"),
    ],
)
def test_no_token_is_E001(cronhooks: dict[str, Any]) -> None:
    assert check_error_codes(cronhooks) == ["cronhooks.E001"]


def test_E001_has_a_hint_to_generate_a_token() -> None:
    (error,) = check_errors({})

    assert error.hint is not None
    assert "secrets.token_urlsafe" in error.hint


def test_short_token_is_E002() -> None:
    assert check_error_codes({"TOKENS": [TOKEN, "s" * 31]}) == ["cronhooks.E002"]


def test_single_token_as_a_str_is_accepted() -> None:
    assert check_error_codes({"TOKENS": TOKEN}) == []


def test_short_token_as_a_str_is_E002() -> None:
    assert check_error_codes({"TOKENS": "s" * 31}) == ["cronhooks.E002"]


def test_token_of_32_characters_is_accepted() -> None:
    assert check_error_codes({"TOKENS": ["s" * 32]}) == []


def test_each_short_token_is_its_own_E002() -> None:
    assert check_error_codes({"TOKENS": ["short-one", "short-two"]}) == [
        "cronhooks.E002",
        "cronhooks.E002",
    ]


def test_E002_names_the_token_by_position_and_length_only() -> None:
    secret = "hunter2-secret"

    (error,) = check_errors({"TOKENS": [TOKEN, secret]})

    assert error.msg == (
        "Token #2 in CRONHOOKS['TOKENS'] is 14 characters; at least 32 are required."
    )
    assert secret not in error.msg
    assert error.hint is not None
    assert secret not in error.hint


def test_token_positions_count_every_entry_and_bad_entries_are_E012() -> None:
    blank, short = check_errors({"TOKENS": ["", "short"]})

    assert (blank.id, short.id) == ("cronhooks.E012", "cronhooks.E002")
    assert blank.msg.startswith("Token #1 ")
    assert short.msg.startswith("Token #2 ")


# E003, E011: the CRONHOOKS setting itself


@pytest.mark.parametrize("cronhooks", [["TOKENS"], "TOKENS", None])
def test_CRONHOOKS_not_a_dict_is_E003(cronhooks: object) -> None:
    assert "cronhooks.E003" in check_error_codes(cronhooks)


def test_CRONHOOKS_not_a_dict_names_its_type() -> None:
    (error,) = [
        error for error in check_errors(["TOKENS"]) if error.id == "cronhooks.E003"
    ]

    assert error.msg == "CRONHOOKS must be a dict."
    assert error.hint == "It is a list."


def test_unknown_top_level_key_is_E003() -> None:
    errors = check_errors({"TOKENS": [TOKEN], "TOKEN": TOKEN})

    assert [error.id for error in errors] == ["cronhooks.E003"]
    assert errors[0].msg == "CRONHOOKS has an unknown key 'TOKEN'."


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("ENABLED", "yes", id="ENABLED-str"),
        pytest.param("ENABLED", 1, id="ENABLED-int"),
        pytest.param("MAX_BODY_SIZE", True, id="MAX_BODY_SIZE-bool"),
        pytest.param("MAX_BODY_SIZE", "16384", id="MAX_BODY_SIZE-str"),
        pytest.param("OUTPUT_LIMIT", 1.5, id="OUTPUT_LIMIT-float"),
        pytest.param("RETENTION_DAYS", -1, id="RETENTION_DAYS-negative"),
        pytest.param("JOBS", [], id="JOBS-list"),
    ],
)
def test_setting_of_the_wrong_type_is_E011(key: str, value: object) -> None:
    assert check_error_codes({"TOKENS": [TOKEN], key: value}) == ["cronhooks.E011"]


def test_TOKENS_of_the_wrong_type_is_E011_and_E001() -> None:
    assert sorted(check_error_codes({"TOKENS": 123})) == [
        "cronhooks.E001",
        "cronhooks.E011",
    ]


@pytest.mark.parametrize(
    "token",
    [TOKEN + "\n", " " + TOKEN, TOKEN[:10] + " " + TOKEN[10:], TOKEN + "\u00e9"],
)
def test_a_token_no_header_can_carry_is_E012(token: str) -> None:
    (error,) = check_errors({"TOKENS": [token]})

    assert error.id == "cronhooks.E012"
    assert token.strip() not in error.msg
    assert error.hint == "A token read from a file may end with a newline: strip it."


def test_negative_setting_message_asks_for_at_least_0() -> None:
    (error,) = check_errors({"TOKENS": [TOKEN], "RETENTION_DAYS": -1})

    assert error.msg == "CRONHOOKS['RETENTION_DAYS'] must be a int of at least 0."
    assert error.hint == "The default is 30."


def test_zero_retention_days_is_accepted() -> None:
    assert check_error_codes({"TOKENS": [TOKEN], "RETENTION_DAYS": 0}) == []


def test_every_known_setting_with_a_valid_value_is_accepted() -> None:
    cronhooks = {
        "TOKENS": (TOKEN,),
        "ENABLED": False,
        "JOBS": {},
        "MAX_BODY_SIZE": 1024,
        "OUTPUT_LIMIT": 1024,
        "RETENTION_DAYS": 7,
    }

    assert check_error_codes(cronhooks) == []


# E004, E007, E008: invalid job definitions


def test_malformed_job_is_E004() -> None:
    errors = check_errors(with_job({"command": "echo_params", "cmd": "x"}))

    assert [error.id for error in errors] == ["cronhooks.E004"]
    assert errors[0].msg == "Job 'nightly' has unknown keys: cmd."


def test_job_name_that_is_not_a_slug_is_E004() -> None:
    assert check_error_codes(with_job({"command": "echo_params"}, name="Nightly")) == [
        "cronhooks.E004"
    ]


def test_malformed_parameter_is_E007() -> None:
    spec = {"command": "echo_params", "params": {"count": {"type": "integer"}}}

    assert check_error_codes(with_job(spec)) == ["cronhooks.E007"]


def test_invalid_cron_expression_is_E008() -> None:
    spec = {"command": "echo_params", "schedule": "61 * * * *"}

    assert check_error_codes(with_job(spec)) == ["cronhooks.E008"]


def test_each_invalid_job_is_reported() -> None:
    cronhooks = {
        "TOKENS": [TOKEN],
        "JOBS": {
            "a": {"command": 5},
            "b": {"command": "echo_params", "schedule": "* * *"},
        },
    }

    assert check_error_codes(cronhooks) == ["cronhooks.E004", "cronhooks.E008"]


# E005: what a job runs must exist


def test_command_that_does_not_exist_is_E005() -> None:
    errors = check_errors(with_job({"command": "no_such_command"}))

    assert [error.id for error in errors] == ["cronhooks.E005"]
    assert "'no_such_command', which does not exist" in errors[0].msg


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("tests.testapp.jobs.nope", id="missing-attribute"),
        pytest.param("no_such_module.ping", id="missing-module"),
        pytest.param("ping", id="not-dotted"),
    ],
)
def test_callable_that_cannot_be_imported_is_E005(target: str) -> None:
    errors = check_errors(with_job({"callable": target}))

    assert [error.id for error in errors] == ["cronhooks.E005"]
    assert "cannot be imported" in errors[0].msg


@pytest.mark.parametrize("target", ["tests.settings.SECRET_KEY", "tests.testapp.jobs"])
def test_callable_that_is_not_callable_is_E005(target: str) -> None:
    errors = check_errors(with_job({"callable": target}))

    assert [error.id for error in errors] == ["cronhooks.E005"]
    assert errors[0].msg.endswith("which is not callable.")


def test_importable_callable_is_accepted() -> None:
    assert check_error_codes(with_job({"callable": "tests.testapp.jobs.ping"})) == []


# E006: what a job passes must be accepted by its command


def test_args_flag_the_command_does_not_accept_is_E006() -> None:
    errors = check_errors(with_job({"command": "echo_params", "args": ["--nope"]}))

    assert [error.id for error in errors] == ["cronhooks.E006"]
    assert errors[0].msg == (
        "Job 'nightly' passes --nope to 'echo_params', which does not accept it."
    )


def test_args_flag_with_attached_value_is_accepted() -> None:
    spec = {
        "command": "uk_create_elections_from_every_election",
        "args": ["--recently-updated", "--recently-updated-delta=5"],
    }

    assert check_error_codes(with_job(spec)) == []


def test_args_values_after_a_flag_are_accepted() -> None:
    spec = {"command": "echo_params", "args": ["--spam", "3", "--word", "hi"]}

    assert check_error_codes(with_job(spec)) == []


def test_short_flag_with_attached_value_is_accepted() -> None:
    spec = {"command": "echo_params", "args": ["-v2"]}

    assert check_error_codes(with_job(spec)) == []


def test_negative_value_after_a_flag_is_accepted() -> None:
    spec = {"command": "echo_params", "args": ["--spam", "-1"]}

    assert check_error_codes(with_job(spec)) == []


def test_option_the_command_does_not_accept_is_E006() -> None:
    errors = check_errors(with_job({"command": "echo_params", "options": {"nope": 1}}))

    assert [error.id for error in errors] == ["cronhooks.E006"]
    assert "sets option(s) nope that 'echo_params' does not accept" in errors[0].msg


def test_E006_hint_lists_the_accepted_destinations() -> None:
    (error,) = check_errors(with_job({"command": "echo_params", "options": {"x": 1}}))

    assert error.hint is not None
    accepted = error.hint.split("accepts: ")[1].rstrip(".").split(", ")
    assert {"count", "ratio", "loud", "word", "colour", "spam"} <= set(accepted)
    assert accepted == sorted(accepted)


def test_param_option_the_command_does_not_accept_is_E006() -> None:
    spec = {
        "command": "uk_create_elections_from_every_election",
        "params": {"delta": {"type": "int", "option": "delta"}},
    }

    assert check_error_codes(with_job(spec)) == ["cronhooks.E006"]


def test_param_without_option_feeds_its_own_name_which_must_be_accepted() -> None:
    spec = {
        "command": "uk_create_elections_from_every_election",
        "params": {"delta": {"type": "int"}},
    }

    errors = check_errors(with_job(spec))

    assert [error.id for error in errors] == ["cronhooks.E006"]
    assert "sets option(s) delta that" in errors[0].msg


def test_options_and_param_options_the_command_accepts_are_accepted() -> None:
    spec = {
        "command": "echo_params",
        "options": {"verbosity": 0, "loud": True},
        "params": {"n": {"type": "int", "option": "count"}},
    }

    assert check_error_codes(with_job(spec)) == []


def test_bad_args_and_bad_options_are_two_E006() -> None:
    spec = {"command": "echo_params", "args": ["--nope"], "options": {"nope": 1}}

    assert check_error_codes(with_job(spec)) == ["cronhooks.E006", "cronhooks.E006"]


# E004, E015, E016, W001, W002: background runs

BACKGROUND = {"command": "echo_params", "background": True}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("background", "yes"),
        ("timeout", 0),
        ("timeout", 1.5),
        ("retries", -1),
        ("retries", True),
        ("retry_delay", -5),
        ("queue_timeout", 0),
    ],
)
def test_background_keys_of_the_wrong_type_are_E004(key: str, value: object) -> None:
    spec = {"command": "echo_params", key: value}

    [error] = check_errors(with_job(spec))

    assert error.id == "cronhooks.E004"
    assert f"'{key}'" in error.msg


def test_a_job_named_runs_is_E015() -> None:
    assert check_error_codes(with_job({"command": "echo_params"}, name="runs")) == [
        "cronhooks.E015"
    ]


def test_a_background_job_on_a_backend_not_in_tasks_is_E016() -> None:
    [error] = check_errors({**with_job(BACKGROUND), "TASK_BACKEND": "nowhere"})

    assert error.id == "cronhooks.E016"
    assert "nightly" in error.msg
    assert error.hint is not None and "'nowhere'" in error.hint


def test_a_queue_the_task_backend_does_not_serve_is_E017() -> None:
    with override_settings(DEBUG=True):  # no W001 for the ImmediateBackend
        [error] = check_errors({**with_job(BACKGROUND), "TASK_QUEUE": "elsewhere"})

    assert error.id == "cronhooks.E017"
    assert "'elsewhere'" in error.msg


def test_no_task_backend_is_needed_without_background_jobs() -> None:
    spec = {"command": "echo_params"}

    assert check_error_codes({**with_job(spec), "TASK_BACKEND": "nowhere"}) == []


def test_background_jobs_on_the_immediate_backend_in_production_are_W001() -> None:
    with override_settings(DEBUG=False):
        [warning] = check_errors(with_job(BACKGROUND))
    with override_settings(DEBUG=True):
        assert check_errors(with_job(BACKGROUND)) == []

    assert warning.id == "cronhooks.W001"
    assert "run inside the request" in warning.msg


@pytest.mark.parametrize(
    ("queue", "timeout", "warned"),
    [
        pytest.param({"DEFAULT_TIMEOUT": -1}, None, False, id="rq-unlimited"),
        pytest.param({}, 175, True, id="rq-default-180s-with-grace"),
        pytest.param({"DEFAULT_TIMEOUT": 3600}, 60, False, id="rq-longer"),
        pytest.param({"DEFAULT_TIMEOUT": 3600}, None, True, id="job-unlimited"),
    ],
)
def test_an_rq_queue_limit_below_a_jobs_timeout_is_W002(
    queue: dict[str, Any], timeout: int | None, warned: bool
) -> None:
    spec = {**BACKGROUND, "timeout": timeout}
    queues = {"default": {"URL": "redis://127.0.0.1:1/0", **queue}}

    with override_settings(RQ_QUEUES=queues):
        codes = check_error_codes({**with_job(spec), "TASK_BACKEND": "rq"})

    assert codes == (["cronhooks.W002"] if warned else [])


def test_a_background_job_with_a_secret_looking_parameter_is_W003() -> None:
    spec = {**BACKGROUND, "params": {"api_token": {"type": "str", "option": "word"}}}

    with override_settings(DEBUG=True):
        [warning] = check_errors(with_job(spec))

    assert warning.id == "cronhooks.W003"
    assert "api_token" in warning.msg
