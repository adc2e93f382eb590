"""Nothing on the trigger path or in /health reads the run history row by row.

Every statement one trigger and one /health send is planned again here with
the database's own planner. On PostgreSQL with sequential scans priced out
(``enable_seqscan = off``): a plan that still scans the run table sequentially
has no index to use. On SQLite, ``EXPLAIN QUERY PLAN`` says ``SCAN`` for a
table read in full and ``SEARCH ... USING INDEX`` for a lookup.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cronhooks.models import JobRun
from cronhooks.testing import trigger
from tests.conftest import ON_POSTGRES

TABLE = JobRun._meta.db_table
# Statements with no plan to look at.
UNPLANNED = ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "SET", "SELECT 1")


def plans_on_postgres(statements: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    with connections["postgres"].cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            for sql in statements:
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
                [plans] = cursor.fetchone()
                # psycopg decodes json; a text answer is decoded here.
                yield sql, (json.loads(plans) if isinstance(plans, str) else plans)[0]
        finally:
            cursor.execute("RESET enable_seqscan")


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def sequential_scans(plan: dict[str, Any]) -> list[str]:
    return [
        node["Node Type"]
        for node in nodes(plan["Plan"])
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == TABLE
    ]


def planned(queries: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in queries.captured_queries
        if not query["sql"].upper().startswith(UNPLANNED)
    ]


@pytest.fixture
def history_on_postgres(settings: Any) -> None:
    """The run history and the database lease both on PostgreSQL."""
    settings.DATABASE_ROUTERS = ["tests.routers.PostgresHistoryRouter"]
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {
            "BACKEND": "cronhooks.locks.database.DatabaseLockBackend",
            "OPTIONS": {"DATABASE": "postgres"},
        },
    }


@ON_POSTGRES
def test_a_trigger_and_health_use_indexes_only_on_postgresql(
    client: Client, auth: dict[str, str], history_on_postgres: None
) -> None:
    trigger(client, "ping")  # the job's lock row exists from now on
    with CaptureQueriesContext(connections["postgres"]) as queries:
        assert trigger(client, "ping").status_code == 200
        assert client.get("/health", headers=auth).status_code == 200

    statements = planned(queries)
    assert any("cronhooks_jobrun" in sql for sql in statements)
    scanned = {
        sql: scans
        for sql, plan in plans_on_postgres(statements)
        if (scans := sequential_scans(plan))
    }
    assert scanned == {}


@ON_POSTGRES
def test_a_query_no_index_serves_is_seen_scanning_on_postgresql() -> None:
    # The check above would pass on any plan if it could not see a scan.
    unindexed = f"SELECT id FROM {TABLE} WHERE error = 'boom'"  # noqa: S608

    [(_, plan)] = plans_on_postgres([unindexed])

    assert sequential_scans(plan) == ["Seq Scan"]


@ON_POSTGRES
def test_each_latest_run_is_one_index_descent_on_postgresql() -> None:
    runs = JobRun.objects.using("postgres")
    with CaptureQueriesContext(connections["postgres"]) as queries:
        runs.latest_runs(["ping", "boom"])

    [(_, plan)] = plans_on_postgres(planned(queries))
    used = {node.get("Index Name") for node in nodes(plan["Plan"])}
    assert {
        "cronhooks_run_job_executed",
        "cronhooks_run_job_succeeded",
        "cronhooks_run_job_failed",
    } <= used
    assert sequential_scans(plan) == []


@ON_POSTGRES
def test_the_pause_lookup_and_a_scrape_use_indexes_only_on_postgresql(
    client: Client, auth: dict[str, str], history_on_postgres: None
) -> None:
    trigger(client, "ping")
    with CaptureQueriesContext(connections["postgres"]) as queries:
        assert trigger(client, "ping").status_code == 200
        assert client.get("/cron/metrics", headers=auth).status_code == 200

    statements = planned(queries)
    pause_lookups = [sql for sql in statements if "cronhooks_jobpause" in sql]
    assert pause_lookups
    scanned = {
        sql: [
            node["Node Type"]
            for node in nodes(plan["Plan"])
            if node["Node Type"] == "Seq Scan"
            and node.get("Relation Name") in (TABLE, "cronhooks_jobpause")
        ]
        for sql, plan in plans_on_postgres(statements)
    }
    assert {sql: scans for sql, scans in scanned.items() if scans} == {}


def full_scans_on_sqlite(sql: str) -> list[str]:
    with connections["default"].cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        details = [str(row[-1]) for row in cursor.fetchall()]
    # The run table is "x" in the latest-runs query.
    return [d for d in details if d.startswith((f"SCAN {TABLE}", "SCAN x"))]


@pytest.fixture
def on_sqlite() -> None:
    if connections["default"].vendor != "sqlite":
        pytest.skip("the SQLite planner's check; this run's database is PostgreSQL")


@pytest.mark.django_db
def test_a_trigger_and_health_use_indexes_only_on_sqlite(
    client: Client, auth: dict[str, str], on_sqlite: None
) -> None:
    trigger(client, "ping")
    with CaptureQueriesContext(connections["default"]) as queries:
        trigger(client, "ping")
        client.get("/health", headers=auth)

    statements = planned(queries)
    assert any(TABLE in sql for sql in statements)
    scanned = {sql: scans for sql in statements if (scans := full_scans_on_sqlite(sql))}
    assert scanned == {}


@pytest.mark.django_db
def test_a_query_no_index_serves_is_seen_scanning_on_sqlite(on_sqlite: None) -> None:
    unindexed = f"SELECT id FROM {TABLE} WHERE error = 'boom'"  # noqa: S608

    assert full_scans_on_sqlite(unindexed) == [f"SCAN {TABLE}"]
