"""cronhooks' migrations, run forwards over history that earlier versions left."""

from __future__ import annotations

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
        # Back to the latest migration: the tests after this one need every
        # table (a pause is looked up on every trigger).
        executor = MigrationExecutor(connection)
        migrate(executor.loader.graph.leaf_nodes("cronhooks"))
