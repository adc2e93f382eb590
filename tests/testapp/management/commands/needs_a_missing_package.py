"""A command whose module cannot be imported, as after a missed dependency."""

from __future__ import annotations

import cronhooks_tests_no_such_package  # type: ignore[import-not-found]  # noqa: F401
