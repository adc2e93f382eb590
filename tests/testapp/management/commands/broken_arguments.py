"""A command whose add_arguments() fails, as after a bad refactor."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        raise TypeError("add_argument() got an unexpected keyword argument 'typ'")
