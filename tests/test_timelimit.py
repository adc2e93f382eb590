"""A job's time limit, with real signals and threads.

Bounds on durations are generous on purpose: they tell "stopped at the limit"
from "ran to the end of its sleep", nothing finer.
"""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
import structlog

from cronhooks.runs.timelimit import RunTimedOut, TimeLimit
from tests.conftest import JsonLines

Job = Callable[[], None]
Runner = Callable[[Job], BaseException | None]


def in_main_thread(job: Job) -> BaseException | None:
    """Run ``job`` here (pytest's main thread); what it raised, if anything."""
    assert threading.current_thread() is threading.main_thread()
    try:
        job()
    except BaseException as error:
        return error
    return None


def start_thread(job: Job) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``job`` in a thread of its own (a threaded web server's); the
    list receives what it raised."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            job()
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, raised


def in_other_thread(job: Job) -> BaseException | None:
    thread, raised = start_thread(job)
    thread.join(10)
    assert not thread.is_alive()
    return raised[0] if raised else None


RUNNERS = [
    pytest.param(in_main_thread, id="main-thread"),
    pytest.param(in_other_thread, id="other-thread"),
]


def busy_for(seconds: float) -> None:
    """Python code that keeps running: small sleeps in a loop."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


def watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "cronhooks-time-limit"]


def join_watchdogs() -> None:
    for thread in watchdogs():
        thread.join(5)
    assert watchdogs() == []


def messages(json_lines: JsonLines) -> set[str]:
    return {line["message"] for line in json_lines()}


class AlarmRecorder:
    """A SIGALRM handler that only notes the alarms it receives."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)


@contextmanager
def alarm_handler(handler: Any) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def previous_handler() -> Iterator[AlarmRecorder]:
    """SIGALRM's handler before each test's limit: a recorder, rather than the
    default action, which would end pytest on an alarm that leaks."""
    recorder = AlarmRecorder()
    with alarm_handler(recorder):
        yield recorder
        # Each limit's watchdog ends with its block (or once it has reported
        # a stuck job): none is left to signal a later test.
        join_watchdogs()


class Hung(Exception):
    pass


@contextmanager
def fails_after(seconds: float) -> Iterator[None]:
    """Fail, rather than hang the test run, if the block (spinning in Python
    code) is still running after ``seconds``."""

    def hung(signum: int, frame: FrameType | None) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGUSR1, hung)
    timer = threading.Timer(seconds, _thread.interrupt_main, args=(signal.SIGUSR1,))
    timer.start()
    try:
        yield
    finally:
        try:
            timer.cancel()
            timer.join()
        finally:
            signal.signal(signal.SIGUSR1, previous)


def test_a_job_in_the_main_thread_is_interrupted_in_a_blocking_call_at_its_limit(
    previous_handler: AlarmRecorder,
) -> None:
    stuck: list[bool] = []
    limit = TimeLimit(0.2, grace=0.2, on_stuck=lambda: stuck.append(True))
    started = time.monotonic()

    with pytest.raises(RunTimedOut), limit:
        time.sleep(30)

    assert 0.19 <= time.monotonic() - started < 5
    assert limit.expired
    join_watchdogs()
    assert stuck == []
    assert previous_handler.received == []
    assert signal.getsignal(signal.SIGALRM) is previous_handler


def test_a_job_in_another_thread_is_not_interrupted_but_its_overrun_is_logged(
    json_lines: JsonLines,
) -> None:
    # Raising into another thread could land inside a lock a library holds.
    stuck: list[bool] = []
    limit = TimeLimit(0.2, grace=0.1, on_stuck=lambda: stuck.append(True))

    def job() -> None:
        with structlog.contextvars.bound_contextvars(run_id="run-1"), limit:
            busy_for(0.6)

    assert in_other_thread(job) is None
    assert limit.expired
    join_watchdogs()
    assert stuck == []
    [line] = [
        line
        for line in json_lines()
        if line["message"] == "run_time_limit_not_enforced"
    ]
    assert line["reason"] == "the job does not run in the main thread"
    assert line["run_id"] == "run-1"  # the watchdog logs in the run's context


@pytest.mark.parametrize("run", RUNNERS)
def test_a_job_that_finishes_within_its_limit_is_never_interrupted_afterwards(
    run: Runner, previous_handler: AlarmRecorder
) -> None:
    stuck: list[bool] = []
    limit = TimeLimit(0.2, grace=0.1, on_stuck=lambda: stuck.append(True))

    def job() -> None:
        with limit:
            time.sleep(0.01)
        busy_for(0.5)  # well past the limit and its grace

    assert run(job) is None
    assert not limit.expired
    assert stuck == []
    assert previous_handler.received == []


def test_a_jobs_except_exception_does_not_swallow_the_interrupt() -> None:
    swallowed: list[Exception] = []

    def job() -> None:
        with TimeLimit(0.2, grace=5):
            try:
                busy_for(30)
            except Exception as error:  # what a careless job does
                swallowed.append(error)

    assert isinstance(in_main_thread(job), RunTimedOut)
    assert swallowed == []


def test_an_alarm_someone_else_sets_during_the_limit_reaches_their_handler() -> None:
    class TheirTimeout(Exception):
        pass

    def theirs(signum: int, frame: FrameType | None) -> None:
        raise TheirTimeout

    limit = TimeLimit(2, grace=1)
    with alarm_handler(theirs):
        # As RQ's own job timeout does with signal.alarm, inside the run.
        with pytest.raises(TheirTimeout), limit:
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            try:
                time.sleep(1.5)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)

        assert not limit.expired
        assert signal.getsignal(signal.SIGALRM) is theirs


def test_a_job_blocking_the_signal_is_reported_stuck_grace_seconds_after_its_limit(
    previous_handler: AlarmRecorder,
) -> None:
    stuck = threading.Event()
    stuck_after: list[float] = []
    started = time.monotonic()

    def on_stuck() -> None:
        stuck_after.append(time.monotonic() - started)
        stuck.set()

    limit = TimeLimit(0.1, grace=0.2, on_stuck=on_stuck)
    with pytest.raises(RunTimedOut), limit:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            stuck.wait(5)  # blocked in C, and the interrupt cannot break in
        finally:
            # Unblocked while the limit's handler is still in place: the
            # interrupt pending since the limit lands now, in the job.
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    assert len(stuck_after) == 1
    assert 0.29 <= stuck_after[0] < 3
    assert signal.SIGALRM not in signal.sigpending()
    assert previous_handler.received == []


def test_an_interrupt_the_job_left_blocked_is_taken_back_when_the_limit_ends(
    previous_handler: AlarmRecorder,
) -> None:
    stuck = threading.Event()
    limit = TimeLimit(0.1, grace=0.1, on_stuck=stuck.set)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        with fails_after(5), limit:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            assert stuck.wait(5)
        pending = signal.sigpending()
    finally:
        # Had the interrupt been left pending, the previous handler would
        # receive it here, taking it for an alarm of its own.
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    assert limit.expired
    assert signal.SIGALRM not in pending
    assert previous_handler.received == []
    assert signal.getsignal(signal.SIGALRM) is previous_handler


def test_a_job_that_swaps_in_its_own_alarm_handler_still_ends_its_limit(
    previous_handler: AlarmRecorder,
) -> None:
    class JobsTimeout(Exception):
        pass

    def jobs_handler(signum: int, frame: FrameType | None) -> None:
        raise JobsTimeout

    limit = TimeLimit(0.1, grace=5)
    # Inside the limit, a signal-based timeout of the job's own: it receives
    # the limit's interrupt, and its exception is what stops the job.
    with (
        fails_after(5),
        limit,
        alarm_handler(jobs_handler),
        pytest.raises(JobsTimeout),
    ):
        time.sleep(2)

    assert limit.expired
    assert previous_handler.received == []
    assert signal.getsignal(signal.SIGALRM) is previous_handler


def test_no_time_limit_starts_no_thread_and_installs_no_handler() -> None:
    threads = threading.active_count()
    handler = signal.getsignal(signal.SIGALRM)

    with TimeLimit(None, grace=1) as limit:
        assert threading.active_count() == threads
        assert signal.getsignal(signal.SIGALRM) is handler

    assert not limit.expired


def test_a_job_stuck_with_no_on_stuck_is_logged_as_not_enforced(
    json_lines: JsonLines,
) -> None:
    def job() -> None:
        with TimeLimit(0.1, grace=0.1):
            # Deaf to the interrupt, as C code that ignores signals is.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            try:
                deadline = time.monotonic() + 5
                while "run_time_limit_not_enforced" not in messages(json_lines):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
            finally:
                # Delivered now, while the limit still holds: RunTimedOut.
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})

    assert isinstance(in_main_thread(job), RunTimedOut)
    [line] = [
        line
        for line in json_lines()
        if line["message"] == "run_time_limit_not_enforced"
    ]
    assert line["level"] == "ERROR"
    assert line["timeout"] == 0.1
    assert line["reason"] == "the job did not stop when told to"


def test_an_alarm_someone_set_to_be_ignored_stays_ignored() -> None:
    original = signal.signal(signal.SIGALRM, signal.SIG_IGN)
    try:
        with TimeLimit(5, grace=5):
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            time.sleep(0.3)  # the alarm came and went
        assert signal.getsignal(signal.SIGALRM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGALRM, original)
    join_watchdogs()


def test_an_alarm_with_the_default_action_still_ends_the_process() -> None:
    # As if the limit were not there: SIGALRM's default action ends a process.
    script = (
        "import signal, time, django\n"
        "django.setup()\n"
        "from cronhooks.runs.timelimit import TimeLimit\n"
        "with TimeLimit(30, grace=5):\n"
        "    signal.setitimer(signal.ITIMER_REAL, 0.05)\n"
        "    time.sleep(10)\n"
        "print('survived')\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": os.pathsep.join([".", "example_project"]),
    }

    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )

    assert result.returncode == -signal.SIGALRM
    assert "survived" not in result.stdout


def test_a_job_that_blocks_the_interrupt_and_returns_leaves_the_mask_as_it_was() -> (
    None
):
    before = signal.pthread_sigmask(signal.SIG_BLOCK, ())

    with TimeLimit(5, grace=5):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})

    assert signal.pthread_sigmask(signal.SIG_BLOCK, ()) == before
    join_watchdogs()
