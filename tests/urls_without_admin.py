"""A project that does not install Django's admin."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("", include("cronhooks.urls"))]
