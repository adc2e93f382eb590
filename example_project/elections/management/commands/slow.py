"""A command that takes as long as it is told to, for trying job locks by hand."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from elections.models import ImportRun

logger = logging.getLogger(__name__)

STEPS_PER_SECOND = 10


class Command(BaseCommand):
    help = "Sleep for --seconds, logging progress every second."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seconds", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        seconds: int = options["seconds"]
        if seconds < 0:
            raise CommandError("--seconds cannot be negative")
        ImportRun.objects.create(command="slow", options={"seconds": seconds})
        # Short steps rather than one sleep so that progress shows while a lock is held.
        for step in range(1, seconds * STEPS_PER_SECOND + 1):
            time.sleep(1 / STEPS_PER_SECOND)
            if step % STEPS_PER_SECOND == 0:
                logger.info("slept %d of %d seconds", step // STEPS_PER_SECOND, seconds)
        summary = f"slept {seconds} seconds"
        self.stdout.write(summary)
        logger.info(summary)
