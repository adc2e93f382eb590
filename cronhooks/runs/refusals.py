"""Refused triggers in the run history: a burst of identical ones is counted.

Every authenticated refusal is in the history before it is answered. A flood
of them (a scheduler retrying in a loop, 500 triggers of a job that is
running) writing one row each spends the database on rows nobody reads one
by one. So a refusal identical to one that this server thread recorded less
than ``FOLD_REFUSALS`` seconds before is counted on that record instead: its
``count`` goes up by one and its ``finished_at`` becomes the refusal's time,
in one UPDATE by primary key. Identical means the same job, reason, error
message, parameters, caller address, source and Idempotency-Key: everything
the record says but its correlation ID (the first refusal's) and its times.

Why a record per server thread rather than one per burst: every refusal of a
flood updating one shared row queues on that row's lock, each waiting for the
one before it to commit (a WAL flush): 940 to 1,750 updates a second on the
machine the benchmarks run on, against 3,500 to 7,650 with a row per thread
(16 threads, PostgreSQL 15, fsync on; ``benchmarks/refusals.py`` measures it
through this module). A burst is then a few records, at most one per server
thread and window, whose counts add up to its refusals.

Nothing is lost: each refusal's count is committed before its answer is sent.
What this thread remembers (which record to count on) is only a shortcut;
when it is stale (the record was pruned, or a transaction that wrote it was
rolled back) a new record is written.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta

from django.db import connections, router

from cronhooks.conf import conf
from cronhooks.models import JobRun

# Identities a thread remembers at most: a burst has one, and a caller who
# varies its parameters to defeat folding only costs itself rows.
MAX_REMEMBERED = 64

Identity = tuple[str, ...]


class _Recent(threading.local):
    def __init__(self) -> None:
        # Identity -> (record id, its started_at), oldest first.
        self.records: dict[Identity, tuple[uuid.UUID, datetime]] = {}


_recent = _Recent()

_COUNT = (
    "UPDATE {table} SET {count} = {count} + 1, {finished_at} = %s "
    "WHERE {id} = %s AND {status} = %s"
)


def record_refusal(run: JobRun) -> None:
    """Write the refused ``run`` to the history, or count it on the identical
    record this thread wrote within ``FOLD_REFUSALS`` seconds: ``run.id`` is
    then that record's.

    Raises ``DatabaseError`` when the history cannot be written.
    """
    alias = router.db_for_write(JobRun)
    within = timedelta(seconds=conf.fold_refusals)
    identity = _identity(run, alias)
    records = _recent.records
    known = records.pop(identity, None)
    if known is not None:
        record_id, started_at = known
        if run.started_at - started_at < within and _counted(
            alias, record_id, run.finished_at
        ):
            run.id = record_id
            records[identity] = known
            return
    run.save(force_insert=True, using=alias)
    if within:
        _remember(identity, run, within)


def _identity(run: JobRun, alias: str) -> Identity:
    return (
        alias,
        run.job,
        run.reason,
        run.error,
        json.dumps(run.params, sort_keys=True),
        run.client,
        run.source,
        run.idempotency_key,
    )


def _counted(alias: str, record_id: uuid.UUID, at: datetime | None) -> bool:
    """Add one to the record's count; False when it is no longer there."""
    # The statement the ORM's update() writes, without building it anew for
    # every refusal of a flood: that took a third of a refusal's time.
    connection = connections[alias]
    quote = connection.ops.quote_name
    sql = _COUNT.format(
        table=quote(JobRun._meta.db_table),
        count=quote("count"),
        finished_at=quote("finished_at"),
        id=quote("id"),
        status=quote("status"),
    )
    id_field, time_field = JobRun._meta.pk, JobRun._meta.get_field("finished_at")
    params = [
        time_field.get_db_prep_value(at, connection),
        id_field.get_db_prep_value(record_id, connection),
        JobRun.Status.REJECTED.value,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return bool(cursor.rowcount)


def _remember(identity: Identity, run: JobRun, within: timedelta) -> None:
    records = _recent.records
    for known, (_, started_at) in list(records.items()):
        if run.started_at - started_at >= within:
            del records[known]
    while len(records) >= MAX_REMEMBERED:
        del records[next(iter(records))]  # the least recently used
    records[identity] = (run.id, run.started_at)


def forget() -> None:
    """Forget this thread's records: each next refusal writes its own."""
    _recent.records.clear()
