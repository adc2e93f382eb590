from __future__ import annotations

from django.contrib import admin

from elections.models import Election, ImportRun, Party

# Options passed to register() rather than ModelAdmin subclasses: ModelAdmin[Model]
# cannot be subscripted at runtime without django-stubs-ext.
admin.site.register(
    Election,
    list_display=["election_id", "name", "poll_open_date", "current", "updated_at"],
    list_filter=["current"],
    search_fields=["election_id", "name"],
)
admin.site.register(Party, list_display=["ec_id", "name"], search_fields=["name"])
admin.site.register(
    ImportRun,
    list_display=["command", "created_at", "options"],
    list_filter=["command"],
)
