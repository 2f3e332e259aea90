"""The accounts of existing API keys named as new ones are (api.services.account_name):
"Till 12 (API key 8mLfbn03)", not "api-key-8mLfbn03", wherever staff read who made a
change."""

from django.conf import settings
from django.db import migrations


def name_accounts(apps, schema_editor):
    ApiKey = apps.get_model("api", "ApiKey")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    db = schema_editor.connection.alias  # the tables' owner's, in production
    for key in ApiKey.objects.using(db).only("name", "prefix", "user_id").iterator():
        # As api.services.account_name (a migration reads no application code).
        User.objects.using(db).filter(pk=key.user_id).update(
            username=f"{key.name} (API key {key.prefix})", first_name=key.name[:150]
        )


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0008_first_answers_of_redemptions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(name_accounts, migrations.RunPython.noop)]
