from __future__ import annotations

import datetime

from django.db import models

# An election stays current from well before polling day (candidates are being added)
# until a few weeks after it (results are still being entered).
CURRENT_BEFORE_POLL = datetime.timedelta(days=90)
CURRENT_AFTER_POLL = datetime.timedelta(days=30)


def is_current(poll_open_date: datetime.date, today: datetime.date) -> bool:
    return (
        poll_open_date - CURRENT_BEFORE_POLL
        <= today
        <= poll_open_date + CURRENT_AFTER_POLL
    )


class Election(models.Model):
    election_id = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    poll_open_date = models.DateField()
    current = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["poll_open_date", "election_id"]

    def __str__(self) -> str:
        return self.election_id


class Party(models.Model):
    ec_id = models.CharField("Electoral Commission id", max_length=20, unique=True)
    name = models.CharField(max_length=255)

    class Meta:
        ordering = ["ec_id"]
        verbose_name_plural = "parties"

    def __str__(self) -> str:
        return self.name


class ImportRun(models.Model):
    """One invocation of an import command, with the options it was given.

    Kept so that what a scheduler actually asked for can be checked after the fact.
    """

    command = models.CharField(max_length=255)
    options = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.command} at {self.created_at:%Y-%m-%d %H:%M:%S}"
