"""manage.py cronhooks: list, run (the same path as HTTP) and prune."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cronhooks.management.commands.cronhooks import Command
from cronhooks.models import JobRun
from elections.models import ImportRun
from tests.conftest import running_record
from tests.servers import RedisServer

pytestmark = pytest.mark.django_db


def cronhooks(*args: str) -> str:
    out = StringIO()
    call_command("cronhooks", *args, stdout=out)
    return out.getvalue()


def test_run_goes_through_the_same_path_as_http() -> None:
    output = cronhooks("run", "mop-recent", "--param", "delta=30")

    run = JobRun.objects.get()
    assert (run.status, run.source, run.params) == ("succeeded", "cli", {"delta": 30})
    assert ImportRun.objects.get().options["recently_updated_delta"] == 30
    assert "imported" in output
    assert f"mop-recent succeeded in {run.duration_ms} ms (run {run.id}" in output


def test_run_validates_parameters_like_http() -> None:
    with pytest.raises(CommandError) as excinfo:
        cronhooks("run", "mop-recent", "-p", "delta=0", "-p", "other=1")

    assert excinfo.value.returncode == 2
    assert "delta: must be at least 1" in str(excinfo.value)
    assert "other: unknown parameter" in str(excinfo.value)
    run = JobRun.objects.get()
    assert (run.status, run.reason, run.source) == (
        "rejected",
        "invalid_parameters",
        "cli",
    )
    assert not ImportRun.objects.exists()


def test_run_of_a_failing_job_exits_1_and_is_recorded() -> None:
    with pytest.raises(CommandError) as excinfo:
        cronhooks("run", "boom")

    assert excinfo.value.returncode == 1
    assert "CommandError: the upstream API said no" in str(excinfo.value)
    assert JobRun.objects.get().status == "failed"


def test_run_of_an_unknown_job_exits_2() -> None:
    with pytest.raises(CommandError) as excinfo:
        cronhooks("run", "nope")

    assert excinfo.value.returncode == 2
    assert JobRun.objects.get().reason == "unknown_job"


def test_run_keeps_a_given_correlation_id() -> None:
    cronhooks("run", "ping", "--correlation-id", "manual-1")

    assert JobRun.objects.get().correlation_id == "manual-1"


def test_run_json_prints_the_result() -> None:
    result = json.loads(cronhooks("run", "ping", "--json"))

    run = JobRun.objects.get()
    assert result["status"] == "succeeded"
    assert result["run_id"] == str(run.id)
    assert result["output"] == "pong"


def test_run_rejects_a_param_without_equals_sign() -> None:
    with pytest.raises(CommandError, match="expected name=value"):
        cronhooks("run", "mop-recent", "--param", "delta")


def test_run_rejects_a_param_given_twice() -> None:
    with pytest.raises(CommandError, match="once"):
        cronhooks("run", "mop-recent", "-p", "delta=1", "-p", "delta=2")


def test_list_shows_every_job_schedule_and_last_run() -> None:
    cronhooks("run", "ping")

    lines = cronhooks("list").splitlines()

    assert lines[0].split() == [
        "JOB",
        "SCHEDULE",
        "ENABLED",
        "LAST",
        "RUN",
        "RUNS",
        "DESCRIPTION",
    ]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "*/5 * * * *" in rows["ee-recent"]
    assert "never" in rows["ee-recent"]
    assert (
        "uk_create_elections_from_every_election --recently-updated"
        in rows["ee-recent"]
    )
    assert "succeeded" in rows["ping"]
    assert "manual" in rows["ping"]
    assert rows["off"].split()[2] == "no"


def test_list_shows_each_jobs_description(settings: Any) -> None:
    jobs = {**settings.CRONHOOKS["JOBS"]}
    jobs["ping"] = {**jobs["ping"], "description": "Says pong, to try the path."}
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}

    rows = {line.split()[0]: line for line in cronhooks("list").splitlines()}

    assert rows["ping"].endswith("  Says pong, to try the path.")


def without_tokens(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TOKENS": []}


def test_no_subcommand_needs_a_token_though_the_server_checks_refuse(
    settings: Any,
) -> None:
    without_tokens(settings)

    with pytest.raises(SystemCheckError, match="cronhooks.E001"):
        call_command("check")
    out = StringIO()
    call_command("cronhooks", "list", skip_checks=False, stdout=out)
    assert "ee-recent" in out.getvalue()
    call_command("cronhooks", "status", skip_checks=False, stdout=out)


def test_no_subcommand_needs_a_signing_secret_either(settings: Any) -> None:
    signature = "cronhooks.authenticators.signature.SignatureAuthenticator"
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "AUTHENTICATORS": [{"BACKEND": signature, "OPTIONS": {"SECRETS": []}}],
    }

    with pytest.raises(SystemCheckError, match="cronhooks.E044"):
        call_command("check")
    out = StringIO()
    call_command("cronhooks", "list", skip_checks=False, stdout=out)
    assert "ee-recent" in out.getvalue()


def test_subcommands_still_refuse_every_other_configuration_error(
    settings: Any,
) -> None:
    without_tokens(settings)
    settings.CRONHOOKS = {**settings.CRONHOOKS, "ENABLED": "false"}

    with pytest.raises(SystemCheckError) as excinfo:
        call_command("cronhooks", "list", skip_checks=False)

    assert "cronhooks.E011" in str(excinfo.value)
    assert "cronhooks.E001" not in str(excinfo.value)


def test_a_warning_is_shown_and_the_subcommand_runs(settings: Any) -> None:
    jobs = {
        **settings.CRONHOOKS["JOBS"],
        "whisper": {
            "command": "echo_params",
            "background": True,
            "params": {"secret_word": {"type": "str", "option": "word"}},
        },
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}
    out, err = StringIO(), StringIO()

    call_command("cronhooks", "list", skip_checks=False, stdout=out, stderr=err)

    assert "cronhooks.W003" in err.getvalue()
    assert "whisper" in out.getvalue()


def test_a_silenced_check_is_not_reported(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "ENABLED": "false"}
    settings.SILENCED_SYSTEM_CHECKS = ["cronhooks.E011"]

    call_command("cronhooks", "list", skip_checks=False, stdout=StringIO())


@pytest.mark.parametrize(
    "argv",
    [
        ["--skip-checks", "list"],
        ["list", "--skip-checks"],
        ["wrangler", "--skip-checks", "--check"],
        ["wrangler", "init", "dir", "--skip-checks"],
        ["run", "ping", "--skip-checks"],
    ],
)
def test_skip_checks_may_come_before_or_after_the_subcommand(argv: list[str]) -> None:
    parser = Command().create_parser("manage.py", "cronhooks")

    assert parser.parse_args(argv).skip_checks is True


def test_checks_run_unless_skipped() -> None:
    parser = Command().create_parser("manage.py", "cronhooks")

    assert parser.parse_args(["list"]).skip_checks is False
    assert parser.parse_args(["wrangler", "init", "dir"]).skip_checks is False


def test_list_flags_a_misconfigured_job(settings: Any) -> None:
    jobs = {**settings.CRONHOOKS["JOBS"], "broken": {"command": "x", "lock_ttl": 0}}
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}

    rows = {line.split()[0]: line for line in cronhooks("list").splitlines()}

    assert "MISCONFIGURED" in rows["broken"]


def make_run(days_ago: float, status: str = "succeeded") -> JobRun:
    started = timezone.now() - timedelta(days=days_ago)
    return JobRun.objects.create(
        job="ping",
        status=status,
        source="cli",
        correlation_id="c",
        started_at=started,
        finished_at=started,
    )


def test_prune_deletes_records_older_than_the_retention(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "RETENTION_DAYS": 7}
    old, kept = make_run(8), make_run(6)

    output = cronhooks("prune")

    assert list(JobRun.objects.all()) == [kept]
    assert "Deleted 1 run record(s)" in output
    assert old.pk not in JobRun.objects.values_list("pk", flat=True)


def test_prune_days_overrides_the_setting() -> None:
    make_run(3)
    kept = make_run(1)

    cronhooks("prune", "--days", "2")

    assert list(JobRun.objects.all()) == [kept]


def test_prune_keeps_each_jobs_newest_run_of_each_outcome_however_old() -> None:
    # /health measures overdue from the last success: pruning it would turn
    # a job whose scheduler stopped from overdue back to pending.
    make_run(30)
    last_success = make_run(20)
    make_run(25, status="failed")
    last_failure = make_run(21, status="failed")
    make_run(22, status="rejected")

    cronhooks("prune", "--days", "7")

    assert set(JobRun.objects.all()) == {last_success, last_failure}


def test_prune_keeps_running_records() -> None:
    running = make_run(100, status="running")

    cronhooks("prune", "--days", "1")

    assert list(JobRun.objects.all()) == [running]


def test_prune_deletes_in_batches_of_bounded_size_and_counts_them_all() -> None:
    kept = make_run(0)
    JobRun.objects.bulk_create(
        JobRun(
            job="ping",
            status="failed",
            source="cli",
            correlation_id="c",
            started_at=timezone.now() - timedelta(days=30, minutes=n),
        )
        for n in range(25)
    )

    with CaptureQueriesContext(connection) as queries:
        output = cronhooks("prune", "--days", "7", "--batch-size", "10")

    deletes = [
        q["sql"]
        for q in queries
        if q["sql"].startswith('DELETE FROM "cronhooks_jobrun"')
    ]
    # 24 old failures go (the newest failure stays, as /health reads it),
    # in statements of at most 10 rows.
    assert [len(re.findall(r"'[0-9a-f]{32}'", sql)) for sql in deletes] == [10, 10, 4]
    assert "Deleted 24 run record(s)" in output
    assert JobRun.objects.count() == 2
    assert JobRun.objects.filter(pk=kept.pk).exists()


def test_prune_rejects_a_batch_size_below_one() -> None:
    with pytest.raises(CommandError, match="1 or more"):
        cronhooks("prune", "--batch-size", "0")


def test_prune_rejects_negative_days() -> None:
    with pytest.raises(CommandError, match="0 or more"):
        cronhooks("prune", "--days", "-1")


def test_status_of_a_refused_run_shows_its_error_and_nothing_empty() -> None:
    with pytest.raises(CommandError):
        cronhooks("run", "nope")
    run = JobRun.objects.get()

    output = cronhooks("status", str(run.id))

    assert "status:           rejected" in output
    assert f"error:            unknown_job: {run.error}" in output
    assert "params:" not in output
    assert "output:" not in output


def test_run_background_without_a_task_backend_exits_2_and_records_nothing(
    settings: Any,
) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TASK_BACKEND": "missing"}

    with pytest.raises(CommandError) as excinfo:
        cronhooks("run", "mop-recent", "--background")

    assert excinfo.value.returncode == 2
    assert "missing" in str(excinfo.value)
    assert not JobRun.objects.exists()
    assert not ImportRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_run_background_json_prints_only_the_queued_run(settings: Any) -> None:
    settings.CRONHOOKS = {**settings.CRONHOOKS, "TASK_BACKEND": "database"}

    body = json.loads(cronhooks("run", "mop-recent", "--background", "--json"))

    run = JobRun.objects.get()
    assert (body["status"], body["run_id"]) == ("queued", str(run.id))
    assert not ImportRun.objects.exists()


def test_cleanup_with_the_lock_backend_down_changes_nothing(
    settings: Any, redis_server: RedisServer
) -> None:
    settings.CRONHOOKS = {
        **settings.CRONHOOKS,
        "LOCKS": {
            "BACKEND": "cronhooks.locks.redis.RedisLockBackend",
            "OPTIONS": {"URL": redis_server.url, "SOCKET_TIMEOUT": 0.5},
        },
    }
    running = running_record("ping", ago=3600)
    redis_server.stop()

    with pytest.raises(CommandError, match="Nothing was changed"):
        cronhooks("cleanup")

    running.refresh_from_db()
    assert running.status == "running"
