"""A key's history rows say "... through the API": the key is named by the row's
account ("Till 12 (API key 8mLfbn03)"), which follows a rename, where the name the row
once wrote into its message kept the old one ("Enrolled through the API key Till 3")."""

from django.db import migrations
from django.db.models import Value
from django.db.models.functions import Concat, Left, StrIndex

SAID = " through the API key "


def drop_key_names(apps, schema_editor):
    ApiKey = apps.get_model("api", "ApiKey")
    LogEntry = apps.get_model("admin", "LogEntry")
    db = schema_editor.connection.alias
    rows = LogEntry.objects.using(db).filter(
        user__in=ApiKey.objects.using(db).values("user"), change_message__contains=SAID
    )
    # One statement for any number of rows (every enrolment of the web shop has one).
    rows.update(
        change_message=Concat(
            Left("change_message", StrIndex("change_message", Value(SAID)) - 1),
            Value(" through the API"),
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0013_codes_to_forget"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [migrations.RunPython(drop_key_names, migrations.RunPython.noop)]
