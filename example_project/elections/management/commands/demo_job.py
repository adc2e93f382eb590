"""A job that fails when asked to, for watching an alert and its recovery."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Succeed, or with --fail fail, to try alerts and heartbeats by hand."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fail", action="store_true", help="Fail on purpose.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["fail"]:
            raise CommandError("failing on request (--fail), as a demo")
        self.stdout.write("succeeded")
