"""A module that fails on import with something other than ImportError."""

from __future__ import annotations

raise RuntimeError("settings.SOME_API_KEY is missing")
