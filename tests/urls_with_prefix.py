"""cronhooks' URLs under a prefix, as a project may include them."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("ops/", include("cronhooks.urls"))]
