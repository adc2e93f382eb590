"""cronhooks under a prefix of the project's, as the README shows it."""

from __future__ import annotations

from django.urls import include, path, re_path

from cronhooks.views import not_found

urlpatterns = [
    path("ops/", include("cronhooks.urls")),
    re_path(r"^ops(/|\Z)", not_found),
]
