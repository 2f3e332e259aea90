import random
from datetime import timedelta
from functools import partial
from operator import itemgetter

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from loyalty_site.demo import (
    FIRST_NAMES,
    LAST_NAMES,
    birth_date,
    demo_vouchers,
    load_catalogue,
    load_goodwill_limits,
    load_programme,
    load_welcome,
    member_code,
    synthetic_history,
)
from members.models import Member, Notification
from members.services import WRITTEN_FROM, email_message, enroll_member
from points.models import Channel
from points.services import record_purchase, record_return
from points.services.snapshots import take_snapshots
from rewards.models import Reward
from rewards.services import cancel_redemption, redeem, release_expired_vouchers, use_voucher


class Command(BaseCommand):
    help = "Load the seed programme and demo members with a year of history. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=2000)
        parser.add_argument("--seed", type=int, default=7)

    # One transaction: a seed stopped half-way (Ctrl-C during its minute or two) leaves
    # nothing, and the next run seeds the whole demo; a run that skipped the members
    # enrolled before would never replay the history they lacked.
    @transaction.atomic
    def handle(self, *, members, seed, **options):
        load_catalogue(load_programme())
        load_welcome()
        load_goodwill_limits()
        rng = random.Random(seed)
        people = random.Random(seed + 1)
        joined_on = {}  # of the members seeded so far
        started = timezone.now()
        now = started.replace(second=0, microsecond=0)
        existing = set(Member.objects.values_list("external_id", flat=True))
        seeded = []  # (member, history, n): enrolled now, their history replayed below
        for n in range(1, members + 1):
            code = member_code(n)
            history = list(synthetic_history(n, now=now, rng=rng))
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            # A tenth were referred by a member who joined before them; most give a
            # birth date (drawn apart: the histories stay those of earlier demos).
            refers = rng.random() < 0.1
            born = birth_date(people) if people.random() < 0.7 else None
            joined = history[0][3] - timezone.timedelta(days=1) if history else now
            earlier = [k for k, at in joined_on.items() if at < joined] if refers else []
            referred_by = member_code(people.choice(earlier)) if earlier else ""
            joined_on[n] = joined
            if code in existing:
                continue  # seeded before: its history is already there (P8 makes a re-run safe)
            member = enroll_member(
                external_id=code,
                email=f"{first}.{last}.{n}@example.com".lower(),
                first_name=first,
                last_name=last,
                joined_at=joined,
                birth_date=born,
                referred_by=referred_by,
            )
            seeded.append((member, history, n))
            if len(seeded) % 500 == 0:
                self.stdout.write(f"  {len(seeded):,} members enrolled")
        self._replay(seeded, now=now)
        # The demo's history is the past: its messages count as sent when written, each
        # with the copy the Notifications page shows.
        past = Notification.objects.filter(sent_at=None, created_at__gte=started)
        past = list(past.select_related(*WRITTEN_FROM))
        for message in past:
            message.sent_at = message.created_at
            for name, value in Notification.sent_fields(email_message(message)).items():
                setattr(message, name, value)
        Notification.objects.bulk_update(past, ["sent_at", "sent_to", "sent_text"], batch_size=500)
        # The units of the vouchers that expired unused are back, as the nightly job
        # would have given them (W6).
        release_expired_vouchers(now=now)
        # The analytics of the past year at once, as the nightly job would have taken them.
        days = take_snapshots()
        self.stdout.write(f"  analytics: {days:,} days taken")
        ready = f"Demo ready: {len(seeded):,} new members, {members:,} demo members in all."
        self.stdout.write(self.style.SUCCESS(ready))

    def _replay(self, seeded, *, now):
        """The members' purchases, returns and vouchers, all members' together in time
        order, as the tills would have recorded them: a friend's first purchase in
        December pays its referral before the referrer's purchases of the year after,
        which then earn at the tier it brought. Written a few hundred at a time."""
        events = []
        for member, history, n in seeded:
            events += self._events(member, history, n=n, now=now)
        events.sort(key=itemgetter(0))  # stable: a member's events at one time keep their order
        for start in range(0, len(events), 500):
            with transaction.atomic():
                for _, write in events[start : start + 500]:
                    write()

    def _events(self, member, history, *, n, now) -> list:
        """(time, write) of the member's purchases and returns, and of the vouchers they
        redeem on the way (an hour after a purchase, with the points they have then)
        and use or cancel later."""
        purchases = sum(1 for row in history if row[0] == "purchase")
        vouchers = {v.after_purchase: v for v in demo_vouchers(n, purchases)}
        events, bought = [], 0
        for kind, external_id, amount, occurred_at, channel, extra in history:
            fields = dict(
                member=member,
                amount=amount,
                occurred_at=occurred_at,
                external_id=external_id,
                channel=channel,
            )
            if kind == "purchase":
                write = partial(self._record, record_purchase, fields, store=extra)
            else:
                write = partial(self._record, record_return, fields, original_external_id=extra)
            events.append((occurred_at, write))
            if kind == "purchase":
                if voucher := vouchers.get(bought):
                    at = occurred_at + timedelta(hours=1)
                    events += self._voucher(member, voucher, at=at, now=now, n=n)
                bought += 1
        return events

    def _record(self, record, fields, **more):
        try:
            record(**fields, **more)
        except ValidationError as exc:
            self.stderr.write(f"{fields['external_id']}: {'; '.join(exc.messages)}")

    def _voucher(self, member, voucher, *, at, now, n) -> list:
        """(time, write) of a demo voucher: redeemed at `at` if the member has the points
        then, and then used at a store, cancelled, or kept, as `voucher` says."""
        if at >= now:
            return []
        made = []

        def redeem_it():
            try:
                reward = Reward.objects.get(name=voucher.reward)
                made.append(redeem(member=member, reward=reward, now=at))
            except ValidationError:
                pass  # not enough points then: no voucher

        later = at + timedelta(days=voucher.days_later)
        if later >= now or voucher.fate == "kept":
            return [(at, redeem_it)]

        def settle():
            if not made:
                return
            if voucher.fate == "used":
                use_voucher(
                    code=made[0].code,
                    external_id=f"D-{n:05d}-USE-{made[0].pk}",
                    channel=Channel.POS,
                    store=voucher.store,
                    now=later,
                )
            else:
                cancel_redemption(redemption=made[0], reason="Changed their mind", now=later)

        return [(at, redeem_it), (later, settle)]
