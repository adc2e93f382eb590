"""cronhooks.jobs: what a job definition may say, and how caller values are cleaned."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from cronhooks.exceptions import (
    InvalidJobDefinition,
    InvalidParameters,
    JobMisconfigured,
    UnknownJob,
)
from cronhooks.jobs import (
    JOB_FIELDS,
    PARAM_KEYS,
    Job,
    Param,
    ParamType,
    all_jobs,
    definitions,
    get_job,
    parse_job,
)
from tests.settings import CRONHOOKS

E004 = "cronhooks.E004"
E007 = "cronhooks.E007"
E008 = "cronhooks.E008"


def definition_error(spec: object, name: object = "nightly") -> InvalidJobDefinition:
    with pytest.raises(InvalidJobDefinition) as excinfo:
        parse_job(name, spec)
    return excinfo.value


def with_param(**param: Any) -> dict[str, Any]:
    """A job definition whose one parameter, ``n``, is ``param``."""
    return {"command": "echo_params", "params": {"n": param}}


def param_error(**param: Any) -> InvalidJobDefinition:
    return definition_error(with_param(**param))


def clean(kind: ParamType, value: object, **options: Any) -> Any:
    return Param(name="n", type=kind, option="n", **options).clean(value)


def clean_error(kind: ParamType, value: object, **options: Any) -> str:
    with pytest.raises(ValueError) as excinfo:
        clean(kind, value, **options)
    return str(excinfo.value)


def params_error(job: Job, raw: dict[str, object]) -> InvalidParameters:
    with pytest.raises(InvalidParameters) as excinfo:
        job.clean_params(raw)
    return excinfo.value


def settings_with_job(name: str, spec: object) -> dict[str, Any]:
    return {**CRONHOOKS, "JOBS": {**CRONHOOKS["JOBS"], name: spec}}


ECHO = parse_job(
    "echo",
    {
        "command": "echo_params",
        "params": {
            "count": {"type": "int", "min": 0, "max": 10},
            "ratio": {"type": "float", "min": 0, "max": 1},
            "word": {"type": "str", "required": True},
            "colour": {"type": "str", "default": "red"},
            "loud": {"type": "bool"},
        },
    },
)


# parse_job: accepted keys


def test_command_job_has_defaults_for_every_optional_key() -> None:
    job = parse_job("nightly", {"command": "echo_params"})

    assert job == Job(
        name="nightly",
        command="echo_params",
        callable="",
        args=(),
        options={},
        params={},
        schedules={},
        lock_ttl=3600,
        enabled=True,
        description="",
    )


def test_callable_job_keeps_the_dotted_path() -> None:
    job = parse_job("ping", {"callable": "tests.testapp.jobs.ping"})

    assert job.callable == "tests.testapp.jobs.ping"
    assert job.command == ""


def test_args_are_kept_as_a_tuple() -> None:
    job = parse_job("nightly", {"command": "echo_params", "args": ["--loud"]})

    assert job.args == ("--loud",)


def test_options_are_kept() -> None:
    job = parse_job("nightly", {"command": "echo_params", "options": {"verbosity": 0}})

    assert job.options == {"verbosity": 0}


def test_params_are_parsed_into_param_objects() -> None:
    job = parse_job("nightly", with_param(type="int"))

    assert job.params == {"n": Param(name="n", type="int", option="n")}


def test_schedule_is_kept() -> None:
    job = parse_job("nightly", {"command": "echo_params", "schedule": "6 2 * * *"})

    assert job.schedule == "6 2 * * *"


def test_lock_ttl_is_kept() -> None:
    job = parse_job("nightly", {"command": "echo_params", "lock_ttl": 60})

    assert job.lock_ttl == 60


def test_enabled_false_is_kept() -> None:
    job = parse_job("nightly", {"command": "echo_params", "enabled": False})

    assert job.enabled is False


def test_description_is_kept() -> None:
    job = parse_job("nightly", {"command": "echo_params", "description": "Echo."})

    assert job.description == "Echo."


def test_job_name_of_64_characters_is_accepted() -> None:
    name = "a" * 64

    assert parse_job(name, {"command": "echo_params"}).name == name


def test_param_reads_every_key() -> None:
    job = parse_job(
        "nightly",
        with_param(
            type="int",
            option="count",
            default="3",
            required=False,
            min=1,
            max=5,
            choices=[1, 3, 5],
            max_length=4,
        ),
    )

    assert job.params["n"] == Param(
        name="n",
        type="int",
        option="count",
        default=3,
        required=False,
        min=1,
        max=5,
        choices=(1, 3, 5),
        max_length=4,
    )


def test_param_option_defaults_to_its_name() -> None:
    job = parse_job("nightly", with_param(type="int"))

    assert job.params["n"].option == "n"


def test_param_default_is_cleaned_to_its_type() -> None:
    job = parse_job("nightly", with_param(type="int", default="25"))

    assert job.params["n"].default == 25


def test_required_param_without_default_is_accepted() -> None:
    job = parse_job("nightly", with_param(type="str", required=True))

    assert job.params["n"].required is True


# parse_job: structure errors are E004


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Nightly", id="uppercase"),
        pytest.param("a/b", id="slash"),
        pytest.param("a" * 65, id="too-long"),
        pytest.param("-nightly", id="leading-dash"),
        pytest.param("nightly-", id="trailing-dash"),
        pytest.param("night ly", id="space"),
        pytest.param("", id="empty"),
        pytest.param(5, id="not-a-str"),
    ],
)
def test_job_name_that_is_not_a_url_slug_is_E026(name: object) -> None:
    error = definition_error({"command": "echo_params"}, name=name)

    assert error.check_id == "cronhooks.E026"
    assert "must be a slug" in str(error)


def test_job_name_with_trailing_newline_is_E026() -> None:
    assert definition_error({"command": "echo_params"}, name="nightly\n").check_id == (
        "cronhooks.E026"
    )


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("echo_params", id="str"),
        pytest.param(["echo_params"], id="list"),
        pytest.param(None, id="none"),
    ],
)
def test_definition_that_is_not_a_dict_is_E027(spec: object) -> None:
    error = definition_error(spec)

    assert error.check_id == "cronhooks.E027"
    assert "must be a dict" in str(error)


def test_unknown_key_is_E028_and_named() -> None:
    error = definition_error({"command": "echo_params", "cmd": "echo_params"})

    assert error.check_id == "cronhooks.E028"
    assert "unknown keys: cmd" in str(error)


def test_a_misspelt_key_names_the_key_it_resembles_and_every_valid_key() -> None:
    error = definition_error({"comand": "echo_params"})

    assert str(error) == (
        "Job 'nightly' has unknown keys: comand (did you mean 'command'?). "
        "Valid keys: alerts, args, background, callable, command, critical, "
        "description, enabled, grace, heartbeat_url, lock_ttl, options, params, "
        "queue_timeout, retries, retry_delay, schedule, timeout."
    )


def test_unknown_keys_of_mixed_types_are_E028() -> None:
    assert definition_error({"command": "echo_params", 1: "a", "b": 2}).check_id == (
        "cronhooks.E028"
    )


def test_neither_command_nor_callable_is_E029() -> None:
    error = definition_error({"schedule": "* * * * *"})

    assert error.check_id == "cronhooks.E029"
    assert "exactly one of 'command' or 'callable'" in str(error)


def test_both_command_and_callable_is_E029() -> None:
    error = definition_error(
        {"command": "echo_params", "callable": "tests.testapp.jobs.ping"}
    )

    assert error.check_id == "cronhooks.E029"
    assert "exactly one of 'command' or 'callable'" in str(error)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"command": 5}, id="command"),
        pytest.param({"callable": ["tests.testapp.jobs.ping"]}, id="callable"),
    ],
)
def test_command_or_callable_that_is_not_a_str_is_E004(spec: object) -> None:
    assert definition_error(spec).check_id == E004


@pytest.mark.parametrize(
    "args",
    [
        pytest.param("--loud", id="str"),
        pytest.param(["--count", 3], id="int-item"),
        pytest.param({"--loud": True}, id="dict"),
    ],
)
def test_args_that_are_not_a_list_of_str_is_E004(args: object) -> None:
    error = definition_error({"command": "echo_params", "args": args})

    assert error.check_id == E004
    assert "'args'" in str(error)


def test_a_value_of_the_wrong_type_names_the_type_it_takes() -> None:
    error = definition_error({"command": "echo_params", "args": "--loud"})

    assert str(error) == (
        "CRONHOOKS['JOBS']['nightly']['args'] is a str; it takes list or tuple."
    )


def test_a_number_out_of_bounds_names_the_bound() -> None:
    error = definition_error({"command": "echo_params", "lock_ttl": 0})

    assert str(error) == (
        "CRONHOOKS['JOBS']['nightly']['lock_ttl'] is 0; it must be at least 1."
    )


def test_every_field_default_is_a_value_the_field_accepts() -> None:
    # parse_job checks only the keys a definition sets and trusts the rest.
    for field in JOB_FIELDS.values():
        assert field.accepts(field.default), field.name


@pytest.mark.parametrize("order", ["as-the-table", "reversed"])
def test_the_mistake_named_is_the_first_in_the_fields_table(order: str) -> None:
    mistakes = {"lock_ttl": 0, "description": 3, "queue_timeout": "1h"}
    keys = list(mistakes) if order == "as-the-table" else list(reversed(mistakes))
    spec = {"command": "echo_params", **{key: mistakes[key] for key in keys}}

    assert str(definition_error(spec)) == (
        "CRONHOOKS['JOBS']['nightly']['lock_ttl'] is 0; it must be at least 1."
    )


def test_args_with_a_callable_is_E030() -> None:
    error = definition_error({"callable": "tests.testapp.jobs.ping", "args": ["-x"]})

    assert error.check_id == "cronhooks.E030"
    assert "only a 'command' takes" in str(error)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"recently-updated": True}, id="dashed-key"),
        pytest.param({1: True}, id="int-key"),
        pytest.param(["verbosity"], id="list"),
    ],
)
def test_options_not_keyed_by_identifiers_is_E004(options: object) -> None:
    error = definition_error({"command": "echo_params", "options": options})

    assert error.check_id == E004
    assert "'options'" in str(error)


@pytest.mark.parametrize(
    "lock_ttl",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(True, id="bool"),
        pytest.param("60", id="str"),
        pytest.param(1.5, id="float"),
    ],
)
def test_lock_ttl_that_is_not_a_positive_int_is_E004(lock_ttl: object) -> None:
    error = definition_error({"command": "echo_params", "lock_ttl": lock_ttl})

    assert error.check_id == E004
    assert "'lock_ttl'" in str(error)


@pytest.mark.parametrize("enabled", ["no", 0, None])
def test_enabled_that_is_not_a_bool_is_E004(enabled: object) -> None:
    error = definition_error({"command": "echo_params", "enabled": enabled})

    assert error.check_id == E004
    assert "'enabled'" in str(error)


def test_description_that_is_not_a_str_is_E004() -> None:
    error = definition_error({"command": "echo_params", "description": 5})

    assert error.check_id == E004
    assert "'description'" in str(error)


# parse_job: parameter errors are E007


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Delta", id="uppercase"),
        pytest.param("1delta", id="leading-digit"),
        pytest.param("a-b", id="dash"),
        pytest.param("a" * 65, id="too-long"),
    ],
)
def test_bad_param_name_is_E033(name: str) -> None:
    error = definition_error(
        {"command": "echo_params", "params": {name: {"type": "int"}}}
    )

    assert error.check_id == "cronhooks.E033"
    assert "needs a name" in str(error)


def test_param_name_with_trailing_newline_is_E033() -> None:
    spec = {
        "command": "echo_params",
        "params": {"count\n": {"type": "int", "option": "count"}},
    }

    assert definition_error(spec).check_id == "cronhooks.E033"


def test_params_that_are_not_a_dict_is_E004() -> None:
    error = definition_error({"command": "echo_params", "params": ["count"]})

    assert error.check_id == E004
    assert "['params'] is a list; it takes dict" in str(error)


def test_param_that_is_not_a_dict_is_E034() -> None:
    error = definition_error({"command": "echo_params", "params": {"n": "int"}})

    assert error.check_id == "cronhooks.E034"
    assert "must be a dict" in str(error)


def test_param_unknown_key_is_E035_and_lists_the_valid_keys() -> None:
    error = param_error(type="int", minimum=1)

    assert error.check_id == "cronhooks.E035"
    assert str(error) == (
        "Job 'nightly' parameter 'n' has unknown keys: minimum (did you mean "
        "'min'?). Valid keys: choices, default, max, max_length, min, option, "
        "required, type."
    )


@pytest.mark.parametrize(
    "param",
    [
        pytest.param({"type": "integer"}, id="unknown-type"),
        pytest.param({"type": int}, id="python-type"),
        pytest.param({}, id="missing"),
    ],
)
def test_param_with_bad_type_is_E007(param: dict[str, Any]) -> None:
    error = param_error(**param)

    assert error.check_id == E007
    assert "use one of int, float, bool, str" in str(error)


@pytest.mark.parametrize("option", ["recently-updated-delta", "", 5])
def test_param_option_that_is_not_an_identifier_is_E007(option: object) -> None:
    error = param_error(type="int", option=option)

    assert error.check_id == E007
    assert "'option'" in str(error)


@pytest.mark.parametrize("kind", ["str", "bool"])
@pytest.mark.parametrize("bound", ["min", "max"])
def test_numeric_bound_on_str_or_bool_is_E007(kind: str, bound: str) -> None:
    error = param_error(type=kind, **{bound: 1})

    assert error.check_id == E007
    assert "only int and float take numeric bounds" in str(error)


@pytest.mark.parametrize("value", ["1", True])
def test_bound_that_is_not_a_number_is_E007(value: object) -> None:
    assert param_error(type="int", min=value).check_id == E007


def test_min_greater_than_max_is_E036() -> None:
    error = param_error(type="int", min=5, max=4)

    assert error.check_id == "cronhooks.E036"
    assert "'min' greater than 'max'" in str(error)


def test_min_equal_to_max_is_accepted() -> None:
    job = parse_job("nightly", with_param(type="int", min=4, max=4))

    assert job.params["n"].min == job.params["n"].max == 4


@pytest.mark.parametrize("max_length", [0, -1, True, "8", 8.0])
def test_max_length_that_is_not_a_positive_int_is_E007(max_length: object) -> None:
    error = param_error(type="str", max_length=max_length)

    assert error.check_id == E007
    assert "'max_length'" in str(error)


@pytest.mark.parametrize(
    "param",
    [
        pytest.param({"type": "int", "min": 1, "default": 0}, id="below-min"),
        pytest.param({"type": "int", "max": 10, "default": 11}, id="above-max"),
        pytest.param({"type": "str", "max_length": 2, "default": "abc"}, id="long"),
    ],
)
def test_default_out_of_bounds_is_E038(param: dict[str, Any]) -> None:
    error = param_error(**param)

    assert error.check_id == "cronhooks.E038"
    assert "has a default" in str(error)


@pytest.mark.parametrize(
    "param",
    [
        pytest.param({"type": "int", "default": "abc"}, id="int"),
        pytest.param({"type": "bool", "default": "maybe"}, id="bool"),
        pytest.param({"type": "str", "default": 5}, id="str"),
    ],
)
def test_default_of_the_wrong_type_is_E038(param: dict[str, Any]) -> None:
    error = param_error(**param)

    assert error.check_id == "cronhooks.E038"
    assert "has a default" in str(error)


def test_default_outside_choices_is_E038() -> None:
    error = param_error(type="str", choices=["red", "green"], default="blue")

    assert error.check_id == "cronhooks.E038"
    assert "must be one of: red, green" in str(error)


def test_required_with_default_is_E037() -> None:
    error = param_error(type="int", required=True, default=1)

    assert error.check_id == "cronhooks.E037"
    assert "cannot have a default" in str(error)


def test_required_that_is_not_a_bool_is_E007() -> None:
    error = param_error(type="int", required="yes")

    assert error.check_id == E007
    assert "'required'" in str(error)


def test_choices_that_are_not_a_list_is_E007() -> None:
    error = param_error(type="str", choices="red")

    assert error.check_id == E007
    assert "'choices' that are not a list" in str(error)


@pytest.mark.parametrize(
    "param",
    [
        pytest.param({"type": "int", "choices": [1, "x"]}, id="wrong-type"),
        pytest.param({"type": "int", "min": 1, "choices": [0, 1]}, id="below-min"),
        pytest.param({"type": "str", "choices": ["a\nb"]}, id="control-char"),
    ],
)
def test_choice_the_param_would_reject_is_E038(param: dict[str, Any]) -> None:
    error = param_error(**param)

    assert error.check_id == "cronhooks.E038"
    assert "has a choice" in str(error)


def test_two_params_feeding_one_option_is_E039() -> None:
    error = definition_error(
        {
            "command": "echo_params",
            "params": {
                "a": {"type": "int", "option": "count"},
                "b": {"type": "int", "option": "count"},
            },
        }
    )

    assert error.check_id == "cronhooks.E039"
    assert "feeds option 'count' twice" in str(error)


def test_param_feeding_a_fixed_option_is_E039() -> None:
    error = definition_error(
        {
            "command": "echo_params",
            "options": {"count": 1},
            "params": {"count": {"type": "int"}},
        }
    )

    assert error.check_id == "cronhooks.E039"
    assert "feeds option 'count' twice" in str(error)


# parse_job: schedule errors


@pytest.mark.parametrize("schedule", [5, ["*/5 * * * *"], None])
def test_schedule_that_is_not_a_str_or_a_dict_is_E004(schedule: object) -> None:
    error = definition_error({"command": "echo_params", "schedule": schedule})

    assert error.check_id == E004
    assert "['schedule'] is a" in str(error)


def test_a_per_environment_schedule_that_is_not_a_str_is_E004() -> None:
    error = definition_error({"command": "echo_params", "schedule": {"staging": 5}})

    assert error.check_id == E004
    assert "schedule 5 that is not a string" in str(error)


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param("Production", id="uppercase"),
        pytest.param("1st", id="leading-digit"),
        pytest.param("*", id="star"),
        pytest.param("a" * 33, id="too-long"),
        pytest.param(1, id="not-a-str"),
    ],
)
def test_a_schedule_environment_that_is_not_a_name_is_E031(
    environment: object,
) -> None:
    spec = {"command": "echo_params", "schedule": {environment: "* * * * *"}}

    error = definition_error(spec)

    assert error.check_id == "cronhooks.E031"
    assert "which is not an environment name" in str(error)


@pytest.mark.parametrize("environment", ["a", "eu-west_2", "p" * 32])
def test_a_schedule_environment_name_is_a_lowercase_slug(environment: str) -> None:
    spec = {"command": "echo_params", "schedule": {environment: "6 2 * * *"}}

    assert parse_job("nightly", spec).schedule_in(environment) == "6 2 * * *"


def test_a_per_environment_schedule_value_must_be_a_cron_expression() -> None:
    error = definition_error(
        {"command": "echo_params", "schedule": {"staging": "61 * * * *"}}
    )

    assert error.check_id == E008
    assert "invalid cron expression '61 * * * *'" in str(error)


def test_a_per_environment_schedule_applies_in_the_configured_environment(
    settings: Any,
) -> None:
    job = parse_job(
        "nightly",
        {
            "command": "echo_params",
            "schedule": {"production": "6 2 * * *", "staging": "6 3 * * *"},
        },
    )

    assert job.schedule == "6 2 * * *"  # ENVIRONMENT defaults to production
    assert job.schedule_in("staging") == "6 3 * * *"
    assert job.schedule_in("development") == ""
    settings.CRONHOOKS = {**settings.CRONHOOKS, "ENVIRONMENT": "staging"}
    assert job.schedule == "6 3 * * *"


def test_a_plain_schedule_applies_in_every_environment() -> None:
    job = parse_job("nightly", {"command": "echo_params", "schedule": "6 2 * * *"})

    assert job.schedule_in("production") == job.schedule_in("anything") == "6 2 * * *"


def test_the_worker_target_makes_parameter_defaults_explicit() -> None:
    job = parse_job(
        "mop-recent",
        {
            "command": "echo_params",
            "params": {
                "count": {"type": "int", "default": 25},
                "loud": {"type": "bool", "default": False},
                "word": {"type": "str"},
            },
        },
    )

    assert job.worker_target == "mop-recent?count=25&loud=false"
    assert parse_job("ee", {"command": "echo_params"}).worker_target == "ee"


@pytest.mark.parametrize(
    "schedule",
    [
        pytest.param("61 * * * *", id="minute-61"),
        pytest.param("* * *", id="three-fields"),
        pytest.param("0 0 31 2 *", id="february-31"),
        pytest.param("@daily", id="nickname"),
    ],
)
def test_invalid_cron_expression_is_E008(schedule: str) -> None:
    error = definition_error({"command": "echo_params", "schedule": schedule})

    assert error.check_id == E008
    assert f"invalid cron expression {schedule!r}" in str(error)


def test_six_field_cron_expression_is_E008() -> None:
    spec = {"command": "echo_params", "schedule": "* * * * * *"}

    assert definition_error(spec).check_id == E008


def test_empty_schedule_means_a_manual_job() -> None:
    job = parse_job("nightly", {"command": "echo_params", "schedule": ""})

    assert job.schedule == ""


# Param.clean: int


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("25", 25),
        ("+3", 3),
        ("-2", -2),
        ("0", 0),
        ("9" * 18, 10**18 - 1),
        (7, 7),
    ],
)
def test_int_is_read_from_digits_or_a_json_int(value: object, expected: int) -> None:
    assert clean("int", value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2.5", id="decimal"),
        pytest.param("abc", id="word"),
        pytest.param("", id="empty"),
        pytest.param(True, id="json-true"),
        pytest.param(1e3, id="json-float"),
        pytest.param("1e3", id="exponent"),
        pytest.param("1" * 19, id="19-digits"),
        pytest.param(None, id="json-null"),
    ],
)
def test_int_rejects_anything_but_an_integer(value: object) -> None:
    assert clean_error("int", value) == "must be an integer"


# Param.clean: float


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.5", 0.5), (".5", 0.5), ("1e-3", 0.001), ("-2", -2.0), (0.25, 0.25), (1, 1.0)],
)
def test_float_is_read_from_a_decimal_or_a_json_number(
    value: object, expected: float
) -> None:
    assert clean("float", value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("nan", id="nan"),
        pytest.param("inf", id="inf"),
        pytest.param("abc", id="word"),
        pytest.param("", id="empty"),
        pytest.param(True, id="json-true"),
    ],
)
def test_float_rejects_anything_but_a_number(value: object) -> None:
    assert clean_error("float", value) == "must be a number"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(float("nan"), id="json-NaN"),
        pytest.param(float("inf"), id="json-Infinity"),
        pytest.param("1e999", id="overflowing-str"),
    ],
)
def test_float_rejects_non_finite_numbers(value: object) -> None:
    assert clean_error("float", value) == "must be a finite number"


def test_float_rejects_a_json_integer_too_large_for_a_float() -> None:
    assert clean_error("float", 10**400) == "must be a finite number"


# Param.clean: bool


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("On", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("NO", False),
        ("off", False),
        (True, True),
        (False, False),
    ],
)
def test_bool_is_read_from_words_or_a_json_boolean(
    value: object, expected: bool
) -> None:
    assert clean("bool", value) is expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("maybe", id="maybe"),
        pytest.param("", id="empty"),
        pytest.param(1, id="json-int"),
        pytest.param(0, id="json-zero"),
        pytest.param(None, id="json-null"),
    ],
)
def test_bool_rejects_anything_but_a_bool_word(value: object) -> None:
    assert clean_error("bool", value) == "must be true or false"


# Param.clean: str


def test_str_is_kept_as_given() -> None:
    assert clean("str", "hello world") == "hello world"


@pytest.mark.parametrize("value", [5, None, True, ["a"]])
def test_str_rejects_non_strings(value: object) -> None:
    assert clean_error("str", value) == "must be a string"


@pytest.mark.parametrize("char", ["\n", "\x00", "\x7f", "\t", "\x1b"])
def test_str_rejects_control_characters(char: str) -> None:
    assert clean_error("str", f"a{char}b") == "must not contain control characters"


def test_str_of_max_length_is_accepted() -> None:
    assert clean("str", "abcdefgh", max_length=8) == "abcdefgh"


def test_str_over_max_length_is_rejected() -> None:
    assert (
        clean_error("str", "abcdefghi", max_length=8) == "must be at most 8 characters"
    )


def test_str_max_length_defaults_to_200() -> None:
    assert clean("str", "a" * 200) == "a" * 200
    assert clean_error("str", "a" * 201) == "must be at most 200 characters"


# Param.clean: bounds and choices


def test_int_at_min_is_accepted() -> None:
    assert clean("int", "1", min=1) == 1


def test_int_below_min_is_rejected() -> None:
    assert clean_error("int", "0", min=1) == "must be at least 1"


def test_int_at_max_is_accepted() -> None:
    assert clean("int", "1440", max=1440) == 1440


def test_int_above_max_is_rejected() -> None:
    assert clean_error("int", "1441", max=1440) == "must be at most 1440"


def test_float_at_bounds_is_accepted() -> None:
    assert clean("float", "0", min=0, max=1) == 0.0
    assert clean("float", "1", min=0, max=1) == 1.0


def test_float_past_bounds_is_rejected_with_the_bound() -> None:
    assert clean_error("float", "-0.1", min=0) == "must be at least 0"
    assert clean_error("float", "1.5", max=1.25) == "must be at most 1.25"


def test_value_among_choices_is_accepted() -> None:
    assert clean("str", "red", choices=("red", "green")) == "red"


def test_value_outside_choices_is_rejected_listing_them() -> None:
    assert (
        clean_error("str", "blue", choices=("red", "green"))
        == "must be one of: red, green"
    )


def test_choices_are_compared_after_cleaning() -> None:
    assert clean("int", "2", choices=(1, 2)) == 2


# Job.clean_params


def test_clean_params_returns_cleaned_values() -> None:
    cleaned = ECHO.clean_params({"count": "3", "ratio": "0.5", "word": "hi"})

    assert cleaned == {"count": 3, "ratio": 0.5, "word": "hi", "colour": "red"}


def test_unknown_parameter_is_reported() -> None:
    error = params_error(ECHO, {"word": "hi", "bogus": "1"})

    assert error.details == {"bogus": "unknown parameter"}


def test_missing_required_parameter_is_reported() -> None:
    error = params_error(ECHO, {})

    assert error.details == {"word": "is required"}


def test_default_is_applied_when_absent() -> None:
    assert ECHO.clean_params({"word": "hi"})["colour"] == "red"


def test_given_value_overrides_default() -> None:
    assert ECHO.clean_params({"word": "hi", "colour": "blue"})["colour"] == "blue"


def test_false_default_is_applied_when_absent() -> None:
    job = parse_job("nightly", with_param(type="bool", default=False))

    assert job.clean_params({}) == {"n": False}


def test_nothing_is_added_for_an_absent_param_without_default() -> None:
    cleaned = ECHO.clean_params({"word": "hi"})

    assert "count" not in cleaned
    assert "loud" not in cleaned


def test_every_invalid_parameter_is_reported_at_once() -> None:
    error = params_error(ECHO, {"count": "11", "ratio": "x", "bogus": "1"})

    assert error.details == {
        "bogus": "unknown parameter",
        "count": "must be at most 10",
        "ratio": "must be a number",
        "word": "is required",
    }


def test_invalid_parameters_message_names_each_parameter() -> None:
    error = params_error(ECHO, {"count": "11"})

    assert error.message == (
        "Invalid parameters: count: must be at most 10; word: is required."
    )


# Job.call_options, Job.target, Job.next_run


def test_call_options_map_params_to_their_option_names() -> None:
    job = parse_job(
        "nightly",
        {
            "command": "uk_create_elections_from_every_election",
            "params": {"delta": {"type": "int", "option": "recently_updated_delta"}},
        },
    )

    assert job.call_options({"delta": 5}) == {"recently_updated_delta": 5}


def test_call_options_keep_fixed_options() -> None:
    job = parse_job(
        "nightly",
        {
            "command": "echo_params",
            "options": {"verbosity": 0},
            "params": {"n": {"type": "int", "option": "count"}},
        },
    )

    assert job.call_options({"n": 2}) == {"verbosity": 0, "count": 2}


def test_call_options_do_not_change_the_job() -> None:
    job = parse_job(
        "nightly",
        {
            "command": "echo_params",
            "options": {"verbosity": 0},
            **with_param(type="int"),
        },
    )

    job.call_options({"n": 2})

    assert job.options == {"verbosity": 0}


def test_target_of_a_command_is_the_command_line() -> None:
    job = parse_job(
        "nightly",
        {
            "command": "uk_create_elections_from_every_election",
            "args": ["--recently-updated", "--check-current"],
        },
    )

    assert job.target == (
        "uk_create_elections_from_every_election --recently-updated --check-current"
    )


def test_target_of_a_callable_is_its_dotted_path() -> None:
    job = parse_job("ping", {"callable": "tests.testapp.jobs.ping"})

    assert job.target == "tests.testapp.jobs.ping"


def test_next_run_every_five_minutes() -> None:
    job = parse_job("nightly", {"command": "echo_params", "schedule": "*/5 * * * *"})
    after = datetime(2025, 1, 1, 0, 1, tzinfo=timezone.utc)

    assert job.next_run(after) == datetime(2025, 1, 1, 0, 5, tzinfo=timezone.utc)


def test_next_run_is_strictly_after_the_given_time() -> None:
    job = parse_job("nightly", {"command": "echo_params", "schedule": "*/5 * * * *"})
    after = datetime(2025, 1, 1, 0, 5, tzinfo=timezone.utc)

    assert job.next_run(after) == datetime(2025, 1, 1, 0, 10, tzinfo=timezone.utc)


def test_next_run_daily_rolls_over_to_the_next_day() -> None:
    job = parse_job("nightly", {"command": "echo_params", "schedule": "6 2 * * *"})
    after = datetime(2025, 1, 31, 3, 0, tzinfo=timezone.utc)

    assert job.next_run(after) == datetime(2025, 2, 1, 2, 6, tzinfo=timezone.utc)


def test_next_run_is_none_without_schedule() -> None:
    job = parse_job("nightly", {"command": "echo_params"})

    assert job.next_run(datetime(2025, 1, 1, tzinfo=timezone.utc)) is None


# Registry


def test_get_job_returns_the_parsed_job() -> None:
    assert get_job("ping") == parse_job("ping", {"callable": "tests.testapp.jobs.ping"})


def test_get_job_of_a_missing_name_raises_unknown_job() -> None:
    with pytest.raises(UnknownJob, match="There is no job named 'nope'"):
        get_job("nope")


def test_get_job_of_an_invalid_definition_raises_job_misconfigured() -> None:
    with (
        override_settings(CRONHOOKS=settings_with_job("broken", {"command": 5})),
        pytest.raises(JobMisconfigured, match="manage.py check"),
    ):
        get_job("broken")


def test_all_jobs_skips_invalid_definitions() -> None:
    with override_settings(CRONHOOKS=settings_with_job("broken", {"command": 5})):
        jobs = all_jobs()

    assert "broken" not in jobs
    assert "ping" in jobs


def test_definitions_list_invalid_definitions_with_their_error() -> None:
    with override_settings(CRONHOOKS=settings_with_job("broken", {"command": 5})):
        broken = definitions()["broken"]

    assert isinstance(broken, InvalidJobDefinition)
    assert broken.check_id == E004


def test_all_jobs_keep_declaration_order() -> None:
    assert list(all_jobs()) == list(CRONHOOKS["JOBS"])


def test_jobs_are_empty_when_jobs_setting_is_not_a_dict() -> None:
    with override_settings(CRONHOOKS={**CRONHOOKS, "JOBS": ["ping"]}):
        assert definitions() == {}


def test_registry_follows_cronhooks_overrides() -> None:
    spec = {"callable": "tests.testapp.jobs.ping"}
    assert "added" not in all_jobs()  # fills the cache before the override

    with override_settings(CRONHOOKS=settings_with_job("added", spec)):
        assert get_job("added").callable == "tests.testapp.jobs.ping"

    with pytest.raises(UnknownJob):
        get_job("added")


def test_definitions_return_a_copy() -> None:
    definitions().clear()

    assert "ping" in definitions()


# The seed routes in tests/settings.py


def test_every_seed_job_is_valid() -> None:
    assert all(isinstance(job, Job) for job in definitions().values())


def test_mop_recent_delta_becomes_recently_updated_delta() -> None:
    job = get_job("mop-recent")

    params = job.clean_params({"delta": "25"})

    assert job.call_options(params) == {"recently_updated_delta": 25}


@pytest.mark.parametrize(
    ("delta", "reason"),
    [("0", "must be at least 1"), ("1441", "must be at most 1440")],
)
def test_mop_recent_delta_out_of_range_is_rejected(delta: str, reason: str) -> None:
    error = params_error(get_job("mop-recent"), {"delta": delta})

    assert error.details == {"delta": reason}


def test_mop_recent_delta_defaults_to_25() -> None:
    job = get_job("mop-recent")

    assert job.call_options(job.clean_params({})) == {"recently_updated_delta": 25}


def test_ee_recent_runs_recently_updated_every_five_minutes() -> None:
    job = get_job("ee-recent")

    assert job.target == "uk_create_elections_from_every_election --recently-updated"
    assert job.schedule == "*/5 * * * *"


# The README's job and parameter tables list every key


def readme_keys(heading: str) -> set[str]:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split(f"\n### {heading}\n", 1)[1].split("\n## ", 1)[0]
    section = section.split("\n### ", 1)[0]
    first_cells = re.findall(r"^\| ([^|]+) \|", section, re.M)
    return {key for cell in first_cells for key in re.findall(r"`([a-z_]+)`", cell)}


def test_the_readme_documents_every_job_key() -> None:
    assert readme_keys("A job") == set(JOB_FIELDS)


def test_the_readme_documents_every_parameter_key() -> None:
    assert readme_keys("A parameter") == PARAM_KEYS


@pytest.mark.parametrize(
    "alerts",
    [
        pytest.param(True, id="true"),
        pytest.param({"slack": "https://hooks.example"}, id="overrides-not-a-dict"),
        pytest.param({1: {}}, id="alias-not-a-str"),
    ],
)
def test_alerts_that_are_neither_false_nor_overrides_by_alias_are_E004(
    alerts: object,
) -> None:
    error = definition_error({"command": "echo_params", "alerts": alerts})

    assert error.check_id == E004
    assert "'alerts'" in str(error)


def test_alerts_false_sends_none() -> None:
    assert (
        parse_job("nightly", {"command": "echo_params", "alerts": False}).alerts is None
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/ping",
        "hc-ping.com/abc",
        "https://",
        "https://[::1/ping",
        "https://hc-ping.com:99999/abc",
    ],
)
def test_a_heartbeat_url_that_is_not_http_is_E004(url: str) -> None:
    error = definition_error({"command": "echo_params", "heartbeat_url": url})

    assert error.check_id == E004
    assert "'heartbeat_url'" in str(error)


def test_an_empty_per_environment_schedule_leaves_the_job_manual_there() -> None:
    spec = {
        "command": "echo_params",
        "schedule": {"production": "", "dev": "* * * * *"},
    }

    job = parse_job("nightly", spec)

    assert job.schedules == {"dev": "* * * * *"}
    assert job.schedule_in("production") == ""
