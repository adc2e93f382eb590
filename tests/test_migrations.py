"""cronhooks' migrations, run forwards over history that earlier versions left."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from datetime import timezone as tz

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("cronhooks", "0002_idempotency")]
AFTER = [("cronhooks", "0003_background_runs")]


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


def latest() -> list[tuple[str, str]]:
    """Where each test leaves the schema: the tests after it expect it whole."""
    nodes: list[tuple[str, str]] = MigrationExecutor(
        connection
    ).loader.graph.leaf_nodes("cronhooks")
    return nodes


def test_0003_keeps_only_each_jobs_newest_running_record_running() -> None:
    old = migrate(BEFORE).loader.project_state(BEFORE).apps
    JobRun = old.get_model("cronhooks", "JobRun")  # noqa: N806  (a model class)
    start = datetime(2026, 11, 1, tzinfo=tz.utc)

    def record(job: str, status: str, minutes: int) -> str:
        run = JobRun.objects.create(
            job=job,
            status=status,
            source="http",
            correlation_id=f"{job}-{minutes}",
            started_at=start + timedelta(minutes=minutes),
        )
        return str(run.id)

    dead = record("import", "running", 0)
    live = record("import", "running", 5)
    alone = record("sync", "running", 1)
    done = record("sync", "succeeded", 0)
    try:
        new = migrate(AFTER).loader.project_state(AFTER).apps
        runs = {
            str(run.id): run
            for run in new.get_model("cronhooks", "JobRun").objects.all()
        }

        assert runs[dead].status == "abandoned"
        assert runs[dead].finished_at is not None
        assert runs[live].status == "running"
        assert runs[alone].status == "running"
        assert runs[done].status == "succeeded"
        assert runs[live].attempt == 1
    finally:
        migrate(latest())


def test_0006_counts_each_earlier_record_once() -> None:
    before = [("cronhooks", "0005_auth_used_signatures")]
    after = [("cronhooks", "0006_perf_flood_refusal_count")]
    old = migrate(before).loader.project_state(before).apps
    old.get_model("cronhooks", "JobRun").objects.create(
        job="import",
        status="rejected",
        source="http",
        correlation_id="refused",
        started_at=datetime(2026, 11, 1, tzinfo=tz.utc),
    )
    try:
        new = migrate(after).loader.project_state(after).apps
        run = new.get_model("cronhooks", "JobRun").objects.get()
        assert run.count == 1
        # A row written with SQL alone (a script, a fixture) counts once too.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO cronhooks_jobrun (id, job, status, source, params, "
                "correlation_id, client, reason, error, output, output_truncated, "
                "started_at, attempt, lock_lost, idempotency_key) VALUES (%s, "
                "'import', 'rejected', 'http', '{}', 'by-sql', '', '', '', '', %s, "
                "%s, 1, %s, '')",
                [uuid.uuid4().hex, False, run.started_at, False],
            )
        by_sql = new.get_model("cronhooks", "JobRun").objects.get(
            correlation_id="by-sql"
        )
        assert by_sql.count == 1
    finally:
        migrate(latest())
