"""A job's time limit: stop it, and if it will not stop, end its worker.

At the limit, ``RunTimedOut`` is raised in the job by a signal, which also
breaks a blocking call such as ``time.sleep`` or a socket read. It is a
``BaseException``, like ``KeyboardInterrupt``, so a job's own ``except
Exception`` cannot swallow it. That needs the job to run in the main thread,
as it does in a task worker (db_worker, RQ's work horse), ``cronhooks run``
and a sync gunicorn worker.

In any other thread (a threaded web server) the overrun is only logged:
CPython can raise into another thread (``PyThreadState_SetAsyncExc``), but the
exception lands wherever that thread happens to be, inside a library's lock
or a tracer's callback included; tried here, it left such a lock held and
hung the process. A stuck web request is its server's to time out.

A job stuck in C code that the signal does not reach can only be stopped with
its process: ``grace`` seconds after the limit, ``on_stuck`` is called from
the watchdog thread (a task worker then records the outcome and exits).
"""

from __future__ import annotations

import contextvars
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from cronhooks.log import get_logger

logger = get_logger()

# Sent by the watchdog with pthread_kill, never by a timer: an alarm that some
# other code set (RQ's own job timeout) keeps working, through the chain below.
INTERRUPT = signal.SIGALRM


class RunTimedOut(BaseException):
    """The job ran past its ``timeout``."""


class TimeLimit:
    """``with TimeLimit(seconds, grace=..., on_stuck=...):`` around the job."""

    def __init__(
        self,
        seconds: float | None,
        *,
        grace: float,
        on_stuck: Callable[[], None] | None = None,
    ) -> None:
        self.seconds = seconds
        self.grace = grace
        self.on_stuck = on_stuck
        self.expired = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._armed = False
        self._signal_sent = False
        self._thread_id = 0
        self._in_main_thread = False
        self._previous: Any = None
        self._mask: set[int | signal.Signals] = set()

    def __enter__(self) -> TimeLimit:
        if self.seconds is None:
            return self
        self._thread_id = threading.get_ident()
        # A handler installed from C (getsignal gives None) could not be put
        # back afterwards: such a job is not interrupted either.
        self._in_main_thread = (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(INTERRUPT) is not None
        )
        if self._in_main_thread:
            self._previous = signal.signal(INTERRUPT, self._on_signal)
            # Put back on the way out: a job that blocks signals and returns
            # must not leave its worker deaf to the next run's limit.
            self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
        self._armed = True
        # With the run's logging context, so the watchdog's lines name the run.
        context = contextvars.copy_context()
        threading.Thread(
            target=context.run,
            args=(self._watch,),
            name="cronhooks-time-limit",
            daemon=True,
        ).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.seconds is None:
            return
        try:
            with self._lock:
                self._armed = False
        finally:
            self._done.set()
            if self._in_main_thread:
                try:
                    self._collect_signal()
                finally:
                    signal.signal(INTERRUPT, self._previous)
                    signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)

    def _watch(self) -> None:
        assert self.seconds is not None  # noqa: S101  (only started with a limit)
        if self._done.wait(self.seconds):
            return
        with self._lock:
            # The job ended just as its limit passed.
            if not self._armed:  # pragma: no cover  (a race with __exit__)
                return
            self.expired = True
            if not self._in_main_thread:
                logger.error(
                    "run_time_limit_not_enforced",
                    timeout=self.seconds,
                    reason="the job does not run in the main thread",
                )
                return
            logger.warning("run_time_limit_reached", timeout=self.seconds)
            self._signal_sent = True
            signal.pthread_kill(self._thread_id, INTERRUPT)
        if self._done.wait(self.grace):
            return
        if self.on_stuck is not None:
            self.on_stuck()
        else:
            logger.error(
                "run_time_limit_not_enforced",
                timeout=self.seconds,
                reason="the job did not stop when told to",
            )

    def _collect_signal(self) -> None:
        """Make sure the signal we sent is gone before the previous handler is
        back: it would take it for its own alarm (SIG_DFL ends the process).

        This used to wait in ``while self._signal_sent: pass`` for our handler
        to run, which never ended, at full CPU, when the job left the signal
        blocked (it stays pending) or when a SIGALRM handler the job had
        swapped in received it (ours then never runs).
        """
        # A disarmed handler of ours does nothing; and pthread_sigmask runs
        # the Python handlers of any signal delivered by then: the one we sent
        # was (directed to this thread, it arrives on the way back from the
        # call) unless this thread blocks it.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, ())
        if (
            self._signal_sent
            and INTERRUPT in blocked
            and INTERRUPT in signal.sigpending()
        ):
            # Still pending, and only this thread could take it: take it back.
            signal.sigwait({INTERRUPT})
        # Whatever is left was received by a handler the job installed.
        self._signal_sent = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._signal_sent:
            self._signal_sent = False
            if self._armed:
                raise RunTimedOut(
                    f"The job ran past its time limit of {self.seconds} s."
                )
            # Ours, arriving as the job ended: nothing to stop any more.
            return  # pragma: no cover  (a race with __exit__)
        # Someone else's alarm: theirs to handle, as if we were not here.
        previous = self._previous
        if callable(previous):
            previous(signum, frame)
        # Tested in a process that this ends, before coverage writes its data.
        elif previous != signal.SIG_IGN:  # pragma: no cover
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
