from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Sleeps: a run long enough for concurrent triggers to be refused."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("seconds", type=float)

    def handle(self, *args: Any, seconds: float, **options: Any) -> None:
        time.sleep(seconds)
