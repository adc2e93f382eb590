"""cronhooks.checks: every configuration mistake has a stable system check id."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
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


def test_token_positions_count_every_entry_and_blank_entries_are_E020() -> None:
    blank, short = check_errors({"TOKENS": ["", "short"]})

    assert (blank.id, short.id) == ("cronhooks.E020", "cronhooks.E002")
    assert blank.msg.startswith("Token #1 ")
    assert short.msg.startswith("Token #2 ")


# E003, E011, E018, E019: the CRONHOOKS setting itself


@pytest.mark.parametrize("cronhooks", [["TOKENS"], "TOKENS", None])
def test_CRONHOOKS_not_a_dict_is_E018(cronhooks: object) -> None:
    assert "cronhooks.E018" in check_error_codes(cronhooks)


def test_CRONHOOKS_not_a_dict_names_its_type() -> None:
    (error,) = [
        error for error in check_errors(["TOKENS"]) if error.id == "cronhooks.E018"
    ]

    assert error.msg == "CRONHOOKS must be a dict."
    assert error.hint == "It is a list."


def test_unknown_top_level_key_is_E003_and_lists_the_valid_keys() -> None:
    errors = check_errors({"TOKENS": [TOKEN], "TOKEN": TOKEN})

    assert [error.id for error in errors] == ["cronhooks.E003"]
    assert errors[0].msg.startswith(
        "CRONHOOKS has unknown keys: TOKEN (did you mean 'TOKENS'?). Valid keys: "
    )
    assert "MAX_BODY_SIZE" in errors[0].msg


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("LOCKS", {"TIMEOUT": 5}, id="LOCKS"),
        pytest.param("RATE_LIMITS", {"PER_MINUTE": "10/m"}, id="RATE_LIMITS"),
    ],
)
def test_an_unknown_key_in_a_dict_setting_is_E003(key: str, value: object) -> None:
    (error,) = check_errors({"TOKENS": [TOKEN], key: value})

    assert error.id == "cronhooks.E003"
    assert error.msg.startswith(f"CRONHOOKS[{key!r}] has unknown keys: ")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("ENABLED", "yes", id="ENABLED-str"),
        pytest.param("ENABLED", 1, id="ENABLED-int"),
        pytest.param("MAX_BODY_SIZE", True, id="MAX_BODY_SIZE-bool"),
        pytest.param("MAX_BODY_SIZE", "16384", id="MAX_BODY_SIZE-str"),
        pytest.param("OUTPUT_LIMIT", 1.5, id="OUTPUT_LIMIT-float"),
        pytest.param("JOBS", [], id="JOBS-list"),
        pytest.param("LOCKS", "database", id="LOCKS-str"),
        pytest.param("LOCKS", {"FAIL_OPEN": "yes"}, id="LOCKS-FAIL_OPEN-str"),
        pytest.param("LOCKS", {"OPTIONS": []}, id="LOCKS-OPTIONS-list"),
        pytest.param("ALERT_TIMEOUT", "5", id="ALERT_TIMEOUT-str"),
    ],
)
def test_setting_of_the_wrong_type_is_E011(key: str, value: object) -> None:
    assert check_error_codes({"TOKENS": [TOKEN], key: value}) == ["cronhooks.E011"]


def test_a_mistyped_ENABLED_says_that_cronhooks_is_off() -> None:
    [error] = check_errors({"TOKENS": [TOKEN], "ENABLED": "false"})

    assert error.id == "cronhooks.E011"
    assert error.hint == "Until it is fixed, cronhooks is switched off."


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


def test_E011_names_the_type_given_and_the_types_taken() -> None:
    (error,) = check_errors({"TOKENS": [TOKEN], "LOCKS": {"FAIL_OPEN": "yes"}})

    assert error.msg == "CRONHOOKS['LOCKS']['FAIL_OPEN'] is a str; it takes bool."
    assert error.hint == "Until it is fixed, the default False applies."


@pytest.mark.parametrize(
    ("key", "value", "bound"),
    [
        pytest.param("RETENTION_DAYS", -1, "at least 0", id="RETENTION_DAYS"),
        pytest.param("MAX_BODY_SIZE", -1, "at least 0", id="MAX_BODY_SIZE"),
        pytest.param("TIMEOUT_GRACE", -10, "at least 0", id="TIMEOUT_GRACE"),
        pytest.param("ALERT_TIMEOUT", 0, "above 0", id="ALERT_TIMEOUT-0"),
        pytest.param("ALERT_TIMEOUT", -0.5, "above 0", id="ALERT_TIMEOUT-float"),
    ],
)
def test_a_number_setting_out_of_bounds_is_E019(
    key: str, value: object, bound: str
) -> None:
    (error,) = check_errors({"TOKENS": [TOKEN], key: value})

    assert error.id == "cronhooks.E019"
    assert error.msg == f"CRONHOOKS[{key!r}] is {value!r}; it must be {bound}."
    assert error.hint is not None and "default" in error.hint


def test_a_positive_float_alert_timeout_is_accepted() -> None:
    assert check_error_codes({"TOKENS": [TOKEN], "ALERT_TIMEOUT": 0.5}) == []


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


# Invalid job definitions: one id per mistake (tests/test_jobs.py has more)


def test_a_job_value_of_the_wrong_type_is_E004() -> None:
    errors = check_errors(with_job({"command": "echo_params", "lock_ttl": "60"}))

    assert [error.id for error in errors] == ["cronhooks.E004"]
    assert errors[0].msg == (
        "CRONHOOKS['JOBS']['nightly']['lock_ttl'] is a str; it takes int."
    )


def test_a_job_value_out_of_bounds_is_E004() -> None:
    spec = {"command": "echo_params", "timeout": 0}

    assert check_error_codes(with_job(spec)) == ["cronhooks.E004"]


def test_a_misspelt_job_key_is_E028_and_lists_the_valid_keys() -> None:
    errors = check_errors(with_job({"comand": "echo_params"}))

    assert [error.id for error in errors] == ["cronhooks.E028"]
    assert "comand (did you mean 'command'?). Valid keys: " in errors[0].msg
    assert "queue_timeout" in errors[0].msg


def test_job_name_that_is_not_a_slug_is_E026() -> None:
    assert check_error_codes(with_job({"command": "echo_params"}, name="Nightly")) == [
        "cronhooks.E026"
    ]


def test_a_job_that_is_not_a_dict_is_E027() -> None:
    assert check_error_codes(with_job("echo_params")) == ["cronhooks.E027"]


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"schedule": "* * * * *"}, id="neither"),
        pytest.param(
            {"command": "echo_params", "callable": "tests.testapp.jobs.ping"},
            id="both",
        ),
    ],
)
def test_a_job_without_exactly_one_of_command_or_callable_is_E029(
    spec: object,
) -> None:
    assert check_error_codes(with_job(spec)) == ["cronhooks.E029"]


def test_a_callable_job_with_args_is_E030() -> None:
    spec = {"callable": "tests.testapp.jobs.ping", "args": ["--loud"]}

    assert check_error_codes(with_job(spec)) == ["cronhooks.E030"]


def test_a_schedule_environment_that_is_not_a_name_is_E031() -> None:
    spec = {"command": "echo_params", "schedule": {"Staging": "* * * * *"}}

    assert check_error_codes(with_job(spec)) == ["cronhooks.E031"]


def test_malformed_parameter_is_E007() -> None:
    spec = {"command": "echo_params", "params": {"count": {"type": "integer"}}}

    assert check_error_codes(with_job(spec)) == ["cronhooks.E007"]


def with_param(name: str, param: object) -> dict[str, Any]:
    return with_job({"command": "echo_params", "params": {name: param}})


@pytest.mark.parametrize(
    ("name", "param", "check_id"),
    [
        pytest.param("Count", {"type": "int"}, "cronhooks.E033", id="E033-name"),
        pytest.param("count", "int", "cronhooks.E034", id="E034-not-a-dict"),
        pytest.param(
            "count", {"type": "int", "minimum": 1}, "cronhooks.E035", id="E035-key"
        ),
        pytest.param(
            "count", {"type": "int", "min": 5, "max": 1}, "cronhooks.E036", id="E036"
        ),
        pytest.param(
            "count",
            {"type": "int", "required": True, "default": 1},
            "cronhooks.E037",
            id="E037-required-with-default",
        ),
        pytest.param(
            "count",
            {"type": "int", "max": 3, "default": 5},
            "cronhooks.E038",
            id="E038-default",
        ),
        pytest.param(
            "count",
            {"type": "int", "choices": [1, "x"]},
            "cronhooks.E038",
            id="E038-choice",
        ),
    ],
)
def test_each_parameter_mistake_has_its_own_id(
    name: str, param: object, check_id: str
) -> None:
    assert check_error_codes(with_param(name, param)) == [check_id]


def test_two_params_feeding_one_option_is_E039() -> None:
    spec = {
        "command": "echo_params",
        "params": {
            "a": {"type": "int", "option": "count"},
            "b": {"type": "int", "option": "count"},
        },
    }

    assert check_error_codes(with_job(spec)) == ["cronhooks.E039"]


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


def test_args_value_the_command_refuses_is_E006() -> None:
    errors = check_errors(
        with_job({"command": "echo_params", "args": ["--count", "x"]})
    )

    assert [error.id for error in errors] == ["cronhooks.E006"]
    assert "invalid int value: 'x'" in errors[0].msg


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


# E032: an option set twice, by args and by options or a parameter


@pytest.mark.parametrize(
    ("args", "feeds"),
    [
        pytest.param(
            ["--count", "3"],
            {"params": {"n": {"type": "int", "option": "count"}}},
            id="param-after-flag-and-value",
        ),
        pytest.param(
            ["--count=3"], {"params": {"count": {"type": "int"}}}, id="param-attached"
        ),
        pytest.param(
            ["--loud"], {"params": {"loud": {"type": "bool"}}}, id="param-store-true"
        ),
        pytest.param(["-v2"], {"options": {"verbosity": 1}}, id="option-short-flag"),
    ],
)
def test_an_option_args_already_set_is_E032(
    args: list[str], feeds: dict[str, Any]
) -> None:
    errors = check_errors(with_job({"command": "echo_params", "args": args, **feeds}))

    assert [error.id for error in errors] == ["cronhooks.E032"]
    assert "which its 'args' already set" in errors[0].msg


def test_E032_names_the_parameter_and_its_option() -> None:
    spec = {
        "command": "uk_create_elections_from_every_election",
        "args": ["--recently-updated", "--recently-updated-delta=5"],
        "params": {"delta": {"type": "int", "option": "recently_updated_delta"}},
    }

    (error,) = check_errors(with_job(spec))

    assert error.msg == (
        "Job 'nightly' sets parameter 'delta' (option 'recently_updated_delta'), "
        "which its 'args' already set: the value from 'args' is silently replaced."
    )


def test_args_and_params_on_different_options_are_accepted() -> None:
    spec = {
        "command": "echo_params",
        "args": ["--spam", "3", "--loud"],
        "options": {"word": "hi"},
        "params": {"n": {"type": "int", "option": "count"}},
    }

    assert check_error_codes(with_job(spec)) == []


# E013, E023, E024: alerts (tests/test_alerts.py has more)


def test_alerts_that_are_not_a_dict_are_E011_only() -> None:
    assert check_error_codes({"TOKENS": [TOKEN], "ALERTS": "slack"}) == [
        "cronhooks.E011"
    ]


def test_a_job_overriding_an_unusable_channel_adds_nothing_to_its_E013() -> None:
    cronhooks = {
        **with_job({"command": "echo_params", "alerts": {"slack": {"X": 1}}}),
        "ALERTS": {"slack": {"BACKEND": "cronhooks.alerts.nope.Backend"}},
    }

    assert check_error_codes(cronhooks) == ["cronhooks.E013"]


# E004, E015, E016, E017, E025, W001, W002, W003: background runs

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


def test_a_job_named_metrics_is_E047() -> None:
    [error] = check_errors(with_job({"command": "echo_params"}, name="metrics"))

    assert error.id == "cronhooks.E047"
    assert "/cron/metrics" in error.msg


# E048: the metrics' own tokens


@pytest.mark.parametrize("tokens", [["m" * 31], "m" * 31, [""], ["m" * 31 + " "]])
def test_an_unusable_metrics_token_is_E048_and_never_shown(tokens: object) -> None:
    [error] = check_errors({"TOKENS": [TOKEN], "METRICS_TOKENS": tokens})

    assert error.id == "cronhooks.E048"
    assert "Token #1 in CRONHOOKS['METRICS_TOKENS']" in error.msg
    assert "m" * 31 not in error.msg


def test_metrics_tokens_of_32_characters_pass() -> None:
    assert check_error_codes({"TOKENS": [TOKEN], "METRICS_TOKENS": ["m" * 32]}) == []


def test_a_background_job_on_a_backend_not_in_tasks_is_E016() -> None:
    [error] = check_errors({**with_job(BACKGROUND), "TASK_BACKEND": "nowhere"})

    assert error.id == "cronhooks.E016"
    assert "nightly" in error.msg
    assert error.hint is not None and "'nowhere'" in error.hint


def test_background_jobs_without_any_tasks_api_are_E025(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if neither Django 6's django.tasks nor the backport were installed.
    monkeypatch.setitem(sys.modules, "django.tasks", None)
    monkeypatch.setitem(sys.modules, "django_tasks", None)

    [error] = check_errors(with_job(BACKGROUND))

    assert error.id == "cronhooks.E025"
    assert error.hint is not None and "django-cronhooks[tasks]" in error.hint


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


# The README lists every id, and a test provokes each


ROOT = Path(__file__).resolve().parent.parent
CHECK_ID = re.compile(r"cronhooks\.[EW][0-9]{3}")


def ids_in(paths: Iterable[Path]) -> set[str]:
    return {found for path in paths for found in CHECK_ID.findall(path.read_text())}


def readme_check_table() -> dict[str, str]:
    section = (ROOT / "README.md").read_text().split("## System checks", 1)[1]
    rows = re.findall(r"^\| `(cronhooks\.[EW][0-9]{3})` \| (.+) \|$", section, re.M)
    return dict(rows)


def test_every_check_id_the_code_raises_is_in_the_readme_with_its_fix() -> None:
    raised = ids_in((ROOT / "cronhooks").rglob("*.py"))
    table = readme_check_table()

    assert raised <= set(table)
    assert all(" | " in row for row in table.values())  # a problem and a fix


def test_every_check_id_in_the_readme_is_provoked_by_a_test() -> None:
    tested = ids_in((ROOT / "tests").glob("test_*.py"))

    assert set(readme_check_table()) - tested == set()


# E042, E043, E044: authenticators

SIGNATURE = "cronhooks.authenticators.signature.SignatureAuthenticator"
SIGNING_SECRET = "s" * 32


def with_authenticators(*entries: object, **extra: Any) -> dict[str, Any]:
    return {"TOKENS": [TOKEN], "AUTHENTICATORS": list(entries), **extra}


def signature(**options: Any) -> dict[str, Any]:
    return {"BACKEND": SIGNATURE, "OPTIONS": {"SECRETS": [SIGNING_SECRET], **options}}


def test_valid_authenticators_have_no_errors() -> None:
    vercel = {
        "BACKEND": "cronhooks.authenticators.vercel.VercelCronAuthenticator",
        "OPTIONS": {"SECRETS": ["v" * 16]},
    }
    bearer = {"BACKEND": "cronhooks.authenticators.bearer.BearerAuthenticator"}

    assert check_error_codes(with_authenticators(bearer, signature(), vercel)) == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param("x", "must be a dict with a 'BACKEND'", id="not-a-dict"),
        pytest.param(
            {"BACKEND": SIGNATURE, "OPTONS": {}}, "and nothing else", id="key"
        ),
        pytest.param({"BACKEND": "no.such.Thing"}, "Could not import", id="import"),
        pytest.param(
            {"BACKEND": "cronhooks.locks.redis.RedisLockBackend"},
            "not a subclass of Authenticator",
            id="not-an-authenticator",
        ),
        pytest.param(
            {"BACKEND": SIGNATURE, "OPTIONS": {"SECRET": "x"}},
            "does not take these OPTIONS",
            id="option",
        ),
    ],
)
def test_an_unusable_authenticator_entry_is_E042(entry: object, message: str) -> None:
    errors = check_errors(with_authenticators(entry))

    assert [error.id for error in errors] == ["cronhooks.E042"]
    assert message in errors[0].msg


def test_no_authenticator_at_all_is_E042() -> None:
    assert check_error_codes(with_authenticators()) == ["cronhooks.E042"]


def test_authenticators_of_the_wrong_type_is_E011() -> None:
    codes = check_error_codes({"TOKENS": [TOKEN], "AUTHENTICATORS": {"a": 1}})

    assert codes == ["cronhooks.E011"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"TOLERANCE": 0}, "TOLERANCE", id="tolerance-zero"),
        pytest.param({"TOLERANCE": True}, "TOLERANCE", id="tolerance-bool"),
        pytest.param({"REPLAY_CACHE": 1}, "REPLAY_CACHE'] is a int", id="cache-type"),
        pytest.param({"REPLAY_CACHE": "nope"}, "not in settings.CACHES", id="alias"),
        pytest.param({"REPLAY_CACHE": "default"}, "is per process", id="locmem"),
        pytest.param({"SECRETS": {"a": "b"}}, "SECRETS'] is a dict", id="secrets"),
    ],
)
def test_signature_options_that_cannot_work_are_E043(
    options: dict[str, Any], message: str
) -> None:
    errors = check_errors(with_authenticators(signature(**options)))

    assert "cronhooks.E043" in [error.id for error in errors]
    [error] = [error for error in errors if error.id == "cronhooks.E043"]
    assert message in error.msg


def test_a_dummy_cache_cannot_remember_signatures() -> None:
    dummy = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    with override_settings(CACHES={**settings.CACHES, "nothing": dummy}):
        errors = check_errors(with_authenticators(signature(REPLAY_CACHE="nothing")))

    assert [error.id for error in errors] == ["cronhooks.E043"]
    assert "keeps nothing" in errors[0].msg


def test_a_redis_cache_may_remember_signatures() -> None:
    assert check_error_codes(with_authenticators(signature(REPLAY_CACHE="redis"))) == []


def test_vercels_secrets_must_be_a_list() -> None:
    vercel = {
        "BACKEND": "cronhooks.authenticators.vercel.VercelCronAuthenticator",
        "OPTIONS": {"SECRETS": 42},
    }

    assert sorted(check_error_codes(with_authenticators(vercel))) == [
        "cronhooks.E043",
        "cronhooks.E044",
    ]


@pytest.mark.parametrize(
    ("secrets", "messages"),
    [
        pytest.param([], ["is empty"], id="none"),
        pytest.param("", ["#1 is not a non-empty string"], id="empty-str"),
        pytest.param(["short"], ["#1 is 5 characters; at least 32"], id="short"),
        pytest.param(
            [SIGNING_SECRET, f"{SIGNING_SECRET}\n"],
            ["#2 contains spaces"],
            id="newline",
        ),
    ],
)
def test_missing_or_weak_signing_secrets_are_E044_never_shown(
    secrets: object, messages: list[str]
) -> None:
    errors = check_errors(with_authenticators(signature(SECRETS=secrets)))

    assert [error.id for error in errors] == ["cronhooks.E044"] * len(messages)
    for error, message in zip(errors, messages, strict=True):
        assert message in error.msg
        assert SIGNING_SECRET not in error.msg


def test_vercels_cron_secret_needs_16_characters() -> None:
    vercel = {
        "BACKEND": "cronhooks.authenticators.vercel.VercelCronAuthenticator",
        "OPTIONS": {"SECRETS": ["v" * 15]},
    }

    [error] = check_errors(with_authenticators(vercel))

    assert error.id == "cronhooks.E044"
    assert "at least 16" in error.msg


def test_tokens_are_not_required_when_no_authenticator_reads_them() -> None:
    assert check_error_codes({"AUTHENTICATORS": [signature()]}) == []
