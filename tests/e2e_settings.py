"""The example project as the Worker's end-to-end test serves it."""

from __future__ import annotations

from example.settings import *  # noqa: F403
from example.settings import CRONHOOKS

# A short Retry-After, so the Worker's honoured wait stays short in the test.
CRONHOOKS["RETRY_AFTER"] = 1
