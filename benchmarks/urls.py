from __future__ import annotations

from django.urls import include, path

from benchmarks import views

urlpatterns = [
    path("bench/bare", views.bare),
    path("bench/naive", views.naive),
    path("bench/naive-record", views.naive_record),
    path("", include("cronhooks.urls")),
]
