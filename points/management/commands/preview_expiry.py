from django.core.management.base import BaseCommand
from django.utils import timezone

from core.command_options import a_day, whole_number
from core.db import whole_table_read
from core.words import counted
from points.expiry_selectors import (
    coming_cutoff,
    cutoff_on_or_after,
    expiry_preview,
    expiry_skipped,
    stake_totals,
)
from points.models import ExpiryRun
from points.selectors import programme


class Command(BaseCommand):
    help = (
        "Dry run of points expiry: the next cutoff on or after a date (default today), "
        "the members and points at stake by tier, and the members. Writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", type=a_day, help="YYYY-MM-DD (default: today)")
        parser.add_argument(
            "--limit", type=whole_number, default=200, help="members listed at most"
        )

    def handle(self, *, date, limit, **options):
        plan = programme()
        policy = plan.expiry
        # Without a date, the cutoff the job takes next: one passed but not run yet first.
        coming = coming_cutoff(plan, timezone.now())
        cutoff = cutoff_on_or_after(policy, date) if date else coming
        if cutoff is None:
            self.stdout.write(f"No expiry: {policy}.")
            return
        if run := ExpiryRun.objects.filter(cutoff=cutoff).first():
            self.stdout.write(
                f"The expiry of {cutoff:%d %B %Y} has run: {counted(run.members, 'member')}, "
                f"{counted(run.points, 'point')} expired. Nothing more is at stake at it."
            )
            return
        with whole_table_read():  # live, every member's ledger: see core.db
            by_tier, members = expiry_preview(cutoff)
            largest = list(members[:limit])
        later = coming is not None and cutoff > coming
        self.stdout.write(
            f"{'Cutoff' if later else 'Next cutoff'}: {cutoff:%d %B %Y} (end of day, "
            f"{timezone.get_current_timezone_name()})"
        )
        if later:  # the figures cannot know what the cutoff before takes
            self.stdout.write(
                f"  The cutoff of {coming:%d %B %Y} comes first and takes its points first: "
                "these figures count balances as they stand today."
            )
        for tier, count, points in by_tier:
            self.stdout.write(f"  {tier}: {counted(count, 'member')}, {counted(points, 'point')}")
        totals = stake_totals(by_tier)
        total_members = totals["members"]
        self.stdout.write(
            f"{counted(total_members, 'member')}, {counted(totals['points'], 'point')} at stake"
        )
        for row in largest:
            name = f"{row['member__first_name']} {row['member__last_name']}".strip()
            self.stdout.write(
                f"  {row['member__external_id']} {name} "
                f"({row['tier_then']}): {counted(row['at_stake'], 'point')}"
            )
        if total_members > limit:
            self.stdout.write(f"  ... and {total_members - limit:,} more")
        skipped_count, skipped = expiry_skipped(cutoff, limit=limit)
        self.stdout.write(f"{counted(skipped_count, 'member')} skipped (frozen over the cutoff)")
        for member, points, why in skipped:
            self.stdout.write(
                f"  {member.external_id}: {counted(points, 'point')} not taken: {why}"
            )
        if skipped_count > limit:
            self.stdout.write(f"  ... and {skipped_count - limit:,} more")
