"""The typed view of CRONHOOKS: defaults, and failing closed on bad values."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from cronhooks.conf import DEFAULTS, SETTINGS, conf, unknown_keys


def test_defaults_apply_when_the_setting_is_absent(settings: Any) -> None:
    del settings.CRONHOOKS

    assert conf.tokens == ()
    assert conf.enabled is True
    assert conf.jobs == {}
    assert conf.max_body_size == DEFAULTS["MAX_BODY_SIZE"]
    assert conf.output_limit == DEFAULTS["OUTPUT_LIMIT"]
    assert conf.retention_days == 30
    assert conf.lock_backend_path == "cronhooks.locks.database.DatabaseLockBackend"
    assert conf.lock_options == {}
    assert conf.lock_fail_open is False


@pytest.mark.parametrize("value", ["false", "true", 1, None])
def test_enabled_is_true_only_for_true(settings: Any, value: object) -> None:
    settings.CRONHOOKS = {"ENABLED": value}

    assert conf.enabled is False


def test_a_single_string_token_is_one_token(settings: Any) -> None:
    settings.CRONHOOKS = {"TOKENS": "a" * 40}

    assert conf.tokens == ("a" * 40,)


def test_non_string_and_empty_tokens_are_ignored(settings: Any) -> None:
    settings.CRONHOOKS = {"TOKENS": ["", None, 5, "a" * 40]}

    assert conf.tokens == ("a" * 40,)


@pytest.mark.parametrize("value", ["16", True, 1.5])
def test_a_mistyped_number_falls_back_to_the_default(
    settings: Any, value: object
) -> None:
    settings.CRONHOOKS = {"MAX_BODY_SIZE": value}

    assert conf.max_body_size == DEFAULTS["MAX_BODY_SIZE"]


def test_fail_open_needs_a_real_true(settings: Any) -> None:
    settings.CRONHOOKS = {"LOCKS": {"FAIL_OPEN": "yes"}}
    assert conf.lock_fail_open is False

    settings.CRONHOOKS = {"LOCKS": {"FAIL_OPEN": True}}
    assert conf.lock_fail_open is True


def test_lock_settings_merge_over_the_defaults(settings: Any) -> None:
    settings.CRONHOOKS = {"LOCKS": {"OPTIONS": {"DATABASE": "other"}}}

    assert conf.lock_backend_path == DEFAULTS["LOCKS"]["BACKEND"]
    assert conf.lock_options == {"DATABASE": "other"}


# The schema: one table behind the accessors, the checks and the README


def readme_settings_table() -> dict[str, list[str]]:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Settings\n", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.+) \|$", section, re.M)
    return {key: [cell.strip() for cell in cells.split("|")] for key, cells in rows}


def test_the_readme_documents_every_setting_its_default_and_bounds() -> None:
    table = readme_settings_table()

    assert set(table) == set(SETTINGS)
    for name, setting in SETTINGS.items():
        _, default, bounds, _ = table[name]
        if not setting.fields:  # LOCKS and RATE_LIMITS point to their sections
            assert default.strip("`") == repr(setting.default).replace("'", '"')
        if setting.bounds:
            assert bounds == setting.bounds


def test_every_number_setting_is_bounded() -> None:
    numbers = [s for s in SETTINGS.values() if int in s.types]

    assert numbers
    assert all(setting.bounds for setting in numbers)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("RETENTION_DAYS", -1, id="negative-int"),
        pytest.param("ALERT_TIMEOUT", 0, id="alert-timeout-0"),
        pytest.param("ALERT_TIMEOUT", True, id="alert-timeout-bool"),
        pytest.param("ENVIRONMENT", None, id="environment-none"),
    ],
)
def test_a_value_out_of_the_schema_falls_back_to_the_default(
    settings: Any, key: str, value: object
) -> None:
    settings.CRONHOOKS = {key: value}

    assert conf.value(key) == SETTINGS[key].default


def test_a_positive_float_alert_timeout_is_kept(settings: Any) -> None:
    settings.CRONHOOKS = {"ALERT_TIMEOUT": 0.25}

    assert conf.alert_timeout == 0.25


def test_each_key_of_a_dict_setting_falls_back_on_its_own(settings: Any) -> None:
    settings.CRONHOOKS = {"RATE_LIMITS": {"PER_IP": 120, "PER_JOB": None, "X": 1}}

    assert conf.rate_limits == {
        "CACHE": "default",
        "PER_JOB": None,  # None is a valid limit: none
        "PER_IP": "120/m",  # a number is not a limit: the default applies
        "AUTH_FAILURES": "10/m",
        "IP_HEADER": "",
    }


def test_a_dict_setting_that_is_not_a_dict_is_all_defaults(settings: Any) -> None:
    settings.CRONHOOKS = {"LOCKS": "redis"}

    assert conf.locks == DEFAULTS["LOCKS"]
    assert conf.locks is not DEFAULTS["LOCKS"]  # a copy: callers cannot change it


def test_a_tuple_of_tokens_is_accepted(settings: Any) -> None:
    settings.CRONHOOKS = {"TOKENS": ("a" * 40, "b" * 40)}

    assert conf.tokens == ("a" * 40, "b" * 40)


def test_tokens_of_another_type_are_none(settings: Any) -> None:
    settings.CRONHOOKS = {"TOKENS": 123}

    assert conf.tokens == ()


def test_a_misspelling_names_the_key_it_resembles_and_every_valid_key() -> None:
    assert unknown_keys(["TOKEN", "zzz"], ["TOKENS", "JOBS"]) == (
        "has unknown keys: TOKEN (did you mean 'TOKENS'?), zzz. "
        "Valid keys: JOBS, TOKENS."
    )
