"""A forgotten ``include("cronhooks.urls")`` is flagged by ``manage.py check``."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command
from django.test import override_settings

from cronhooks.checks import check_urls_included


def test_included_urls_pass() -> None:
    assert check_urls_included() == []


@override_settings(ROOT_URLCONF="tests.urls_without_cronhooks")
def test_forgotten_urls_are_warned_about_with_the_fix() -> None:
    [warning] = check_urls_included()

    assert warning.id == "cronhooks.W004"
    assert "include('cronhooks.urls')" in str(warning.hint)


@override_settings(ROOT_URLCONF="tests.urls_without_cronhooks")
def test_manage_py_check_shows_it() -> None:
    out = StringIO()

    call_command("check", "--tag", "urls", stderr=out, stdout=out)

    assert "cronhooks.W004" in out.getvalue()
