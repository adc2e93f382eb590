"""The typed view of CRONHOOKS: defaults, and failing closed on bad values."""

from __future__ import annotations

from typing import Any

import pytest

from cronhooks.conf import DEFAULTS, conf


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
