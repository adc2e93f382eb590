"""cronhooks.runs.execution: what a job's run comes to, whatever it does."""

from __future__ import annotations

from typing import Any

import pytest

from cronhooks.models import JobRun
from cronhooks.runs import Trigger, run_job
from tests.settings import TOKEN


@pytest.mark.django_db
def test_a_job_printing_the_token_has_it_redacted_from_output_and_record(
    settings: Any,
) -> None:
    jobs = {
        **settings.CRONHOOKS["JOBS"],
        "leaky": {"callable": "tests.testapp.jobs.leak"},
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}

    outcome = run_job(
        Trigger(job="leaky", source=JobRun.Source.CLI, correlation_id="c")
    )

    outcome.run.refresh_from_db()
    assert TOKEN not in outcome.run.output
    assert TOKEN not in outcome.run.error
    assert "[redacted]" in outcome.run.error


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        (None, "succeeded", ""),
        (0, "succeeded", ""),
        (3, "failed", "SystemExit: 3"),
        ("bad input", "failed", "SystemExit: bad input"),
    ],
)
def test_sys_exit_in_a_job_is_an_outcome_not_a_crash(
    settings: Any, code: object, status: str, error: str
) -> None:
    jobs = {
        **settings.CRONHOOKS["JOBS"],
        "exits": {
            "callable": "tests.testapp.jobs.exit_with",
            "params": {"code": {"type": "str"}},
        },
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}
    params = {} if code is None else {"code": str(code)}

    outcome = run_job(
        Trigger(
            job="exits", source=JobRun.Source.CLI, correlation_id="c", params=params
        )
    )

    assert (outcome.run.status, outcome.run.error) == (status, error)


@pytest.mark.django_db
def test_an_interrupted_run_is_recorded_as_failed_and_the_interrupt_propagates(
    settings: Any,
) -> None:
    jobs = {
        **settings.CRONHOOKS["JOBS"],
        "ctrl-c": {"callable": "tests.testapp.jobs.interrupt"},
    }
    settings.CRONHOOKS = {**settings.CRONHOOKS, "JOBS": jobs}

    with pytest.raises(KeyboardInterrupt):
        run_job(Trigger(job="ctrl-c", source=JobRun.Source.CLI, correlation_id="c"))

    run = JobRun.objects.get()
    assert (run.status, run.reason) == ("failed", "interrupted")
    assert run.finished_at is not None
