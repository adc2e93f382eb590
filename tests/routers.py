"""Routes cronhooks' own models to one database alias, for the tests that cut
the run history's database away while the rest of the project keeps its own."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

ALIAS = "proxied"


class RunHistoryRouter:
    def _route(self, model: type[Model], **hints: Any) -> str | None:
        return ALIAS if model._meta.app_label == "cronhooks" else None

    db_for_read = _route
    db_for_write = _route


class PostgresHistoryRouter:
    """cronhooks' models on the "postgres" alias, the project's elsewhere."""

    def _route(self, model: type[Model], **hints: Any) -> str | None:
        return "postgres" if model._meta.app_label == "cronhooks" else None

    db_for_read = _route
    db_for_write = _route
