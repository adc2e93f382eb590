"""cronhooks.testing: the helpers a project's own tests call."""

from __future__ import annotations

from typing import Any

import pytest

from cronhooks.testing import auth_headers
from tests.conftest import OTHER_TOKEN
from tests.settings import TOKEN


def test_auth_headers_carry_the_first_configured_token(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": [TOKEN, OTHER_TOKEN]}

    assert auth_headers() == {"Authorization": f"Bearer {TOKEN}"}
    assert auth_headers(OTHER_TOKEN) == {"Authorization": f"Bearer {OTHER_TOKEN}"}


def test_auth_headers_without_a_configured_token_say_what_is_missing(
    settings: Any,
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": []}

    with pytest.raises(
        ValueError, match=r"No token is configured in CRONHOOKS\['TOKENS'\]"
    ):
        auth_headers()
