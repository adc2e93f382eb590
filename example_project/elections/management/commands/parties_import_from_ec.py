"""Demo of a command that imports registered parties from the Electoral Commission.

The real one downloads the register; this one upserts a fixed list.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from elections.models import ImportRun, Party

logger = logging.getLogger(__name__)

DEMO_PARTIES = [
    ("PP52", "Conservative and Unionist Party"),
    ("PP53", "Labour Party"),
    ("PP90", "Liberal Democrats"),
    ("PP63", "Green Party"),
]


class Command(BaseCommand):
    help = "Import registered parties from the Electoral Commission (demo data)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--post-to-slack",
            action="store_true",
            help="Post a summary to the Slack webhook in SLACK_WEBHOOK_URL.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        post_to_slack: bool = options["post_to_slack"]
        ImportRun.objects.create(
            command="parties_import_from_ec", options={"post_to_slack": post_to_slack}
        )
        for ec_id, name in DEMO_PARTIES:
            Party.objects.update_or_create(ec_id=ec_id, defaults={"name": name})
        summary = f"imported {len(DEMO_PARTIES)} parties"
        self.stdout.write(summary)
        logger.info(summary)

        if post_to_slack:
            webhook_url = os.environ.get("SLACK_WEBHOOK_URL", "")
            if webhook_url:
                post_slack_message(webhook_url, summary)
            else:
                logger.warning("SLACK_WEBHOOK_URL is not set, not posting to Slack")


def post_slack_message(webhook_url: str, text: str) -> None:
    # Imported here so that requests is only needed by those who post to Slack.
    import requests

    response = requests.post(webhook_url, json={"text": text}, timeout=5)
    response.raise_for_status()
    logger.info("posted to Slack")
