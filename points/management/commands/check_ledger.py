import sys

from django.core.management.base import BaseCommand
from django.db import transaction

from core.words import counted
from members.models import Member
from points.selectors import cache_mismatches
from tiers.selectors import Ranking, misqualified_by_tier
from tiers.services import recalculate_all_tiers


class Command(BaseCommand):
    help = (
        "Rebuild every member's balance and lifetime points from the ledger and compare "
        "them with the cached figures and tiers. Exits 1, naming the members, if any differ."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Write the ledger's figures back into the caches and requalify the members.",
        )

    def handle(self, *, repair, **options):
        problems = [
            f"{m.external_id}: balance {m.points_balance}, ledger {m.ledger_balance}; "
            f"lifetime {m.lifetime_points}, ledger {m.ledger_lifetime}"
            for m in cache_mismatches().iterator(chunk_size=2000)
        ]
        for tier, band in misqualified_by_tier(Ranking()):
            problems += [
                f"{code}: qualified tier is not {tier.name} as its lifetime points say"
                for code in band.values_list("external_id", flat=True)
            ]
        if not problems:
            total = Member.objects.count()
            self.stdout.write(f"{counted(total, 'member')} checked, all equal the ledger.")
            return
        for line in problems:
            self.stderr.write(line)
        self.stderr.write(f"{len(problems):,} differences from the ledger.")
        if repair:
            self._repair()
            self.stderr.write("Caches rebuilt from the ledger.")
        sys.exit(1)

    @transaction.atomic
    def _repair(self):
        for member in cache_mismatches().select_for_update(of=("self",)):
            Member.objects.filter(pk=member.pk).update(
                points_balance=member.ledger_balance, lifetime_points=member.ledger_lifetime
            )
        recalculate_all_tiers()
