"""`python manage.py finish_upgrade`: run once web, workers and beat of a new release
have all restarted (docs/deploy.md), for what the release before wrote meanwhile."""

from django.core.management.base import BaseCommand

from api.history import name_keys_by_their_accounts
from rewards.services.upgrade import name_redemptions_of_the_release_before


class Command(BaseCommand):
    help = "Finish an upgrade once every process runs the new release (docs/deploy.md)."

    def handle(self, *args, **options):
        named = name_redemptions_of_the_release_before()
        self.stdout.write(f"redemptions named={named}")
        rewritten = name_keys_by_their_accounts()
        self.stdout.write(f"key history rows={rewritten}")
