"""A command with a required option, which call_command() accepts as a keyword."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", required=True)

    def handle(self, *args: Any, **options: Any) -> str:
        return f"date={options['date']}"
