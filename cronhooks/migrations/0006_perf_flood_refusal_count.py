from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cronhooks", "0005_auth_used_signatures"),
    ]

    operations = [
        migrations.AddField(
            model_name="jobrun",
            name="count",
            field=models.PositiveIntegerField(
                default=1,
                db_default=1,
                help_text="How many identical refused triggers this record stands "
                "for, from started_at to finished_at (see runs/refusals.py); 1 for "
                "a run.",
            ),
        ),
    ]
