from __future__ import annotations

from django.urls import path, re_path

from cronhooks import views

app_name = "cronhooks"

urlpatterns = [
    # Before the trigger's catch-all; "runs" and "metrics" are reserved job
    # names.
    re_path(r"^cron/runs/(?P<run_id>(?s:.*))\Z", views.run_status, name="run"),
    path("cron/metrics", views.metrics, name="metrics"),
    # Any name, even "" or "a/b", reaches the view: it is refused there, in
    # JSON and recorded, after authentication.
    re_path(r"^cron/(?P<job>(?s:.*))\Z", views.trigger, name="trigger"),
    path("health", views.health, name="health"),
    # cronhooks owns the "cron" segment whole: "cron" alone (which APPEND_SLASH
    # would redirect to "cron/", repeating the query string and a token in
    # it) and "cron" followed by what begins no project's path ("cron;x",
    # "cron\\..") answer JSON rather than the project's 404 page. Not a
    # catch-all: included at "", it would shadow every URL of the project
    # listed after it.
    re_path(r"^cron(?:[^\w/.-][\s\S]*)?\Z", views.not_found, name="not_found"),
]
