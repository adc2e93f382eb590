from __future__ import annotations

from django.urls import path

from cronhooks import views

app_name = "cronhooks"

urlpatterns = [
    path("cron/<str:job>", views.trigger, name="trigger"),
    path("health", views.health, name="health"),
]
