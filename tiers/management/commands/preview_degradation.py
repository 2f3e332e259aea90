from collections import Counter

from django.core.management.base import BaseCommand
from django.utils import timezone

from core.command_options import a_day, whole_number
from core.days import end_of
from core.words import counted
from tiers.degradation_previews import degradation_preview, degradation_skipped
from tiers.models import DegradationPolicy
from tiers.selectors import Ranking


class Command(BaseCommand):
    help = (
        "Dry run of tier degradation: which members would drop to which tier on a date "
        "(default today), as if the policy were enabled. Writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--date", type=a_day, help="YYYY-MM-DD; the job's run at the end of that day"
        )
        parser.add_argument(
            "--limit", type=whole_number, default=200, help="members listed at most"
        )

    def handle(self, *, date, limit, **options):
        day = date or timezone.localdate()
        # The run at the end of the day (today's: tonight's), as the policy's confirmation
        # page counts it: whose period ends by then, whose status match ended that day.
        now = end_of(day)
        policy = DegradationPolicy.current()
        state = "enabled" if policy.enabled else "disabled: this is what enabling it would do"
        policy.enabled = True  # a preview of the policy as configured, on or off
        ranking = Ranking()
        moves = degradation_preview(policy, ranking, now)
        self.stdout.write(
            f"Degradation on {day:%Y-%m-%d} "
            f"({policy.inactivity_days} days per period, {policy.levels_per_step} level(s) "
            f"per period; policy {state})"
        )
        for member, target in list(moves.items())[:limit]:
            self.stdout.write(
                f"  {member.external_id}: {member.effective_tier.name} -> {target.name} "
                f"(qualified {member.qualified_tier.name})"
            )
        if len(moves) > limit:
            self.stdout.write(f"  ... and {len(moves) - limit:,} more")
        by_move = Counter((m.effective_tier.name, t.name) for m, t in moves.items())
        for (source, target), count in sorted(by_move.items()):
            self.stdout.write(f"{source} -> {target}: {count:,}")
        self.stdout.write(f"{counted(len(moves), 'member')} would drop.")
        skipped_count, skipped = degradation_skipped(policy, ranking, now, limit=limit)
        # The colon announces the list: none without one.
        colon = ":" if skipped else "."
        self.stdout.write(
            f"{counted(skipped_count, 'member')} skipped (a status match or a freeze){colon}"
        )
        for member, why in skipped:
            self.stdout.write(f"  {member.external_id} ({member.effective_tier.name}): {why}")
        if skipped_count > limit:
            self.stdout.write(f"  ... and {skipped_count - limit:,} more")
