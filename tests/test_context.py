"""current_run(): what a running job can know about its own run."""

from __future__ import annotations

from typing import Any

import pytest

from cronhooks.context import current_run
from cronhooks.models import JobRun
from cronhooks.runs import Trigger, run_job


def test_there_is_no_current_run_outside_a_job() -> None:
    assert current_run() is None


@pytest.mark.django_db
def test_a_job_sees_its_own_run_and_fencing_token(settings: Any) -> None:
    jobs = {
        **settings.CRONHOOKS["JOBS"],
        "context": {"callable": "tests.testapp.jobs.describe_run"},
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}

    outcome = run_job(
        Trigger(job="context", source=JobRun.Source.CLI, correlation_id="c")
    )

    assert outcome.run.fencing_token is not None
    assert outcome.run.output == (
        f"fencing_token={outcome.run.fencing_token} lock_lost=False"
    )
    assert current_run() is None  # reset when the run ends
