"""CX supervisors correct a birth date a member gave (the member page): a birthday
campaign multiplies what a member earns in their birthday month, so moving a birth date
moves points. CX agents still give one a member never gave (they change members)."""

from django.db import migrations

from loyalty_site.permission_grants import granted


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0019_agents_correct_contact_details"),
        ("members", "0036_birth_date_correction_permission"),
    ]
    operations = [granted("members", "correct_birth_date", ["CX supervisor"])]
