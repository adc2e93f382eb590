from __future__ import annotations

from django.apps import AppConfig


class CronhooksConfig(AppConfig):
    name = "cronhooks"
    verbose_name = "Cron hooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cronhooks import checks  # noqa: F401  (registers the checks)
        from cronhooks.log import install_default_handler

        install_default_handler()
