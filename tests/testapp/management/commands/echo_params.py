"""Echo the options it received, and log through the stdlib like user code."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int)
        parser.add_argument("--ratio", type=float)
        parser.add_argument("--loud", action="store_true")
        parser.add_argument("--word")
        parser.add_argument("--colour")
        parser.add_argument("--spam", type=int, default=0, help="Lines to print.")

    def handle(self, *args: Any, **options: Any) -> None:
        logger.info("echo_params ran")
        keys = ("count", "ratio", "loud", "word", "colour")
        self.stdout.write(json.dumps({key: options[key] for key in keys}))
        for number in range(options["spam"]):
            self.stderr.write(f"line {number}")
