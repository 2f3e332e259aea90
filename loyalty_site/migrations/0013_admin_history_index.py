"""A member's "History" page in the CX Manager (and the erasure, which rewrites the
lines that name the member) reads the admin's log by object: Django's own table has no
index for it, so each visit read every line of every member's history (each points
assignment, redemption and contact change writes one). Written once per staff action:
the index costs nothing staff would notice."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("loyalty_site", "0012_supervisors_import_grants"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS admin_log_object "
            "ON django_admin_log (content_type_id, object_id)",
            "DROP INDEX IF EXISTS admin_log_object",
        )
    ]
