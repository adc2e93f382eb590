from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Does nothing: what is measured is everything around it."

    def handle(self, *args: Any, **options: Any) -> None:
        pass
