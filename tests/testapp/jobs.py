from __future__ import annotations

from django.conf import settings


def ping() -> str:
    return "pong"


def leak() -> None:
    token = settings.CRONHOOKS["TOKENS"][0]
    raise RuntimeError(f"upstream rejected Authorization: Bearer {token}")


def interrupt() -> None:
    raise KeyboardInterrupt
