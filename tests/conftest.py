from __future__ import annotations

import pytest
from django.test import Client

from tests.settings import TOKEN

OTHER_TOKEN = "rotated-token-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client() -> Client:
    # enforce_csrf_checks: prove the trigger view needs no CSRF token, as a
    # real scheduler sends none.
    return Client(enforce_csrf_checks=True)
