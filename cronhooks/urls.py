from __future__ import annotations

from django.urls import path, re_path

from cronhooks import views

app_name = "cronhooks"

urlpatterns = [
    # Before the trigger's catch-all; "runs" is a reserved job name.
    re_path(r"^cron/runs/(?P<run_id>(?s:.*))\Z", views.run_status, name="run"),
    # Any name, even "" or "a/b", reaches the view: it is refused there, in
    # JSON and recorded, after authentication.
    re_path(r"^cron/(?P<job>(?s:.*))\Z", views.trigger, name="trigger"),
    path("health", views.health, name="health"),
]
