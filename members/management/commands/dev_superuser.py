from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

USERNAME, PASSWORD = "admin", "admin"


class Command(BaseCommand):
    help = "Create the development superuser admin/admin if it is missing (DEBUG only)."

    def handle(self, **options):
        if not settings.DEBUG:
            raise CommandError("Refusing to create a development superuser with DEBUG off.")
        User = get_user_model()
        if User.objects.filter(username=USERNAME).exists():
            return
        User.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
        self.stdout.write(f"Superuser {USERNAME} / {PASSWORD} created.")
