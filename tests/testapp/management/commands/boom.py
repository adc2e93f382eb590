"""A command that fails the way real ones do: output first, then an error."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("starting")
        raise CommandError("the upstream API said no")
