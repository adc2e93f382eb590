"""What a running job can know about its own run.

from cronhooks.context import current_run

run = current_run()
if run is not None:
    write_to_shared_store(data, fencing_token=run.fencing_token)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunContext:
    run_id: str
    job: str
    correlation_id: str
    params: Mapping[str, Any]
    #: Grows with every grant of the job's lock: pass it to a shared resource
    #: so it can refuse writes from a holder whose lock has since expired.
    fencing_token: int | None
    _lost: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def lock_lost(self) -> bool:
        """True once this run is no longer known to hold its job's lock."""
        return self._lost.is_set()


_current: ContextVar[RunContext | None] = ContextVar("cronhooks_run", default=None)


def current_run() -> RunContext | None:
    """The run being executed in this context, or None outside a run."""
    return _current.get()
