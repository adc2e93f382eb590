"""Demo of a command that imports elections from Every Election (EE).

The real one calls the EE API; this one upserts a fixed list so runs are repeatable.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any, NamedTuple

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from elections.models import Election, ImportRun, is_current

logger = logging.getLogger(__name__)

DEFAULT_RECENTLY_UPDATED_DELTA = 60


class DemoElection(NamedTuple):
    election_id: str
    name: str
    poll_open_date: datetime.date
    minutes_since_changed: int


DEMO_ELECTIONS = [
    DemoElection("local.2027-05-06", "Local elections", datetime.date(2027, 5, 6), 5),
    DemoElection(
        "local.sheffield.by.2026-12-10",
        "Sheffield by-election",
        datetime.date(2026, 12, 10),
        20,
    ),
    DemoElection(
        "mayor.london.2028-05-04", "Mayor of London", datetime.date(2028, 5, 4), 45
    ),
    DemoElection(
        "senedd.2026-05-07", "Senedd election", datetime.date(2026, 5, 7), 300
    ),
    DemoElection(
        "sp.2026-05-07", "Scottish Parliament", datetime.date(2026, 5, 7), 1000
    ),
    DemoElection(
        "parl.2029-08-16", "General election", datetime.date(2029, 8, 16), 10080
    ),
]


class Command(BaseCommand):
    help = "Import elections from Every Election (demo data)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--recently-updated",
            action="store_true",
            help="Only import elections changed in EE recently.",
        )
        parser.add_argument(
            "--recently-updated-delta",
            type=int,
            dest="recently_updated_delta",
            metavar="MINUTES",
            help="With --recently-updated, how far back to look "
            f"(default {DEFAULT_RECENTLY_UPDATED_DELTA}).",
        )
        parser.add_argument(
            "--check-current",
            action="store_true",
            help="Recompute which elections are current from their poll dates.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        recently_updated: bool = options["recently_updated"]
        delta: int | None = options["recently_updated_delta"]
        check_current: bool = options["check_current"]
        if delta is not None and not recently_updated:
            raise CommandError("--recently-updated-delta needs --recently-updated")
        ImportRun.objects.create(
            command="uk_create_elections_from_every_election",
            options={
                "recently_updated": recently_updated,
                "recently_updated_delta": delta,
                "check_current": check_current,
            },
        )

        today = timezone.localdate()
        if recently_updated:
            minutes = DEFAULT_RECENTLY_UPDATED_DELTA if delta is None else delta
            recent = [e for e in DEMO_ELECTIONS if e.minutes_since_changed <= minutes]
            imported = import_elections(recent, today)
            self.report(f"imported {imported} elections (delta={minutes} minutes)")
        elif not check_current:
            imported = import_elections(DEMO_ELECTIONS, today)
            self.report(f"imported {imported} elections")

        if check_current:
            checked, changed = check_current_elections(today)
            self.report(f"checked {checked} elections, {changed} changed current")

    def report(self, summary: str) -> None:
        self.stdout.write(summary)
        logger.info(summary)


def import_elections(elections: list[DemoElection], today: datetime.date) -> int:
    for election in elections:
        Election.objects.update_or_create(
            election_id=election.election_id,
            defaults={
                "name": election.name,
                "poll_open_date": election.poll_open_date,
                "current": is_current(election.poll_open_date, today),
            },
        )
    return len(elections)


def check_current_elections(today: datetime.date) -> tuple[int, int]:
    elections = list(Election.objects.all())
    changed = []
    # bulk_update() skips auto_now, so updated_at is set here.
    now = timezone.now()
    for election in elections:
        current = is_current(election.poll_open_date, today)
        if election.current != current:
            election.current = current
            election.updated_at = now
            changed.append(election)
    Election.objects.bulk_update(changed, ["current", "updated_at"])
    return len(elections), len(changed)
