from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.days import latest_allowed
from core.ids import quoted_start, quoted_start_refused
from core.staff_input import invisible_in

# The earliest day a member's dates may name (a birth, a joining): an earlier one is a
# year typed wrong ("0001" for "2001"), which the rules would take in silence.
EARLIEST_DAY = date(1900, 1, 1)


def from_earliest_day(value) -> None:
    """A date staff type (a birth, a joining, a campaign's or a reward's window) on
    EARLIEST_DAY or later."""
    day = timezone.localdate(value) if isinstance(value, datetime) else value
    if day and day < EARLIEST_DAY:
        raise ValidationError(
            f"A date before {EARLIEST_DAY.year} is a year typed wrong: check it.", code="too_early"
        )


def not_in_future(day) -> None:
    """A birth date has passed: today at the latest, in the programme's time zone. (No
    zone's date is before yesterday in UTC: the zone is asked about recent days only,
    which an import of a million members checks quickly.)"""
    if day and day >= _utc_yesterday() and day > timezone.localdate():
        raise ValidationError("A birth date cannot be in the future.", code="future")


# The zero-width non-joiner and joiner: Persian and Indic names, and emoji, need them.
JOINERS = "\u200c\u200d"


def readable_name(name) -> None:
    """A person's name shows as it reads: no line break or tab (a paste of two cells), no
    right-to-left override (one left open turns the rest of an agent's line around:
    "se.elpmaxe@" for an e-mail), no zero-width space (a second, identical-looking name)."""
    if where := invisible_in(name, allowed=JOINERS):
        raise ValidationError(
            f"A name cannot hold an invisible character ({where}): type it again, or paste "
            "it as plain text.",
            code="invisible",
        )


def addressable_code(code) -> None:
    """A customer code names a member in the API's addresses (/api/v1/members/{code}),
    where a "/" would be read as a path separator, however it is escaped, and "." or
    ".." as the path's own segments (browsers and HTTP libraries remove them)."""
    if "/" in code:
        raise ValidationError(
            "A customer code cannot contain “/”: the API could not name the member.", code="slash"
        )
    if code in (".", ".."):
        raise ValidationError(
            f"A customer code cannot be “{code}”: the API could not name the member.",
            code="dots",
        )
    if hidden := invisible_in(code):
        # "M-0001" and "M-0001" + a zero-width space look alike: a second account.
        raise ValidationError(
            f"A customer code cannot hold an invisible character ({hidden}): it would "
            "look like another code.",
            code="invisible",
        )
    if quoted_start(code):  # a file would read "'+M-1" as "+M-1": a second account
        raise ValidationError(quoted_start_refused("A customer code"), code="quoted")


def _utc_yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def joined_by_now(moment) -> None:
    """A member has joined by now, or a day ahead at most (a till's clock running fast),
    as a purchase may be dated: a year typed wrong would stop their degradation clock."""
    if moment and moment > latest_allowed():
        raise ValidationError("A member cannot join more than a day in the future.", code="future")


# Members a status match or a freeze holds (or held): the condition of the partial index
# member_held, which a query finds them by only when it asks for exactly this.
HELD = models.Q(granted_tier__isnull=False) | models.Q(frozen_until__isnull=False)


class Member(models.Model):
    """A customer of the programme.

    `points_balance` and `lifetime_points` are caches of the ledger (P7): the services
    update them in the same transaction as each ledger write and `check_ledger`
    rebuilds them. The balance holds every redeemable point, pending ones included;
    available = balance - pending, because pending depends on the clock.
    """

    # Unique by the constraint in Meta, and searched through member_search_* (members
    # migrations 0004 and 0032, the names folded): no other index, because a purchase
    # rewrites every index entry of its member (it changes indexed columns, so the
    # update cannot be HOT).
    external_id = models.CharField("customer code", max_length=64, validators=[addressable_code])
    email = models.EmailField()
    first_name = models.CharField(max_length=100, blank=True, validators=[readable_name])
    last_name = models.CharField(max_length=100, blank=True, validators=[readable_name])
    phone = models.CharField(max_length=40, blank=True)
    joined_at = models.DateTimeField(
        default=timezone.now, validators=[from_earliest_day, joined_by_now]
    )
    birth_date = models.DateField(
        null=True, blank=True, validators=[from_earliest_day, not_in_future]
    )

    # Indexed by member_inactive_since below.
    qualified_tier = models.ForeignKey(
        "tiers.Tier", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # Indexed only with the lifetime points or the id (member_tier_lifetime and
    # member_tier_newest below), for the member list of one tier sorted by them or
    # newest first; the dashboard counts members per tier with a
    # scan. So the degradation job's mass update of it is not HOT (it writes every index
    # entry of the member): at a million members, its first run (455,000 degraded) takes
    # 38 s instead of 25 s, a nightly run 1.3-1.5 s instead of 1.2 s (bench/degradation.py);
    # the id at the index's end (members 0026) adds nothing measurable.
    effective_tier = models.ForeignKey(
        "tiers.Tier", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # The highest tier ever reached: rising above it is a tier-up (T2).
    best_tier = models.ForeignKey(
        "tiers.Tier", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    points_balance = models.BigIntegerField(default=0, editable=False)
    lifetime_points = models.BigIntegerField(default=0, editable=False)
    last_purchase_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The last expiry cutoff already taken off `points_balance` (E3 bookkeeping).
    expired_through = models.DateField(null=True, blank=True, editable=False)
    # Right to be forgotten: personal fields were replaced, by whom and when.
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)
    # An erased customer's code, as a one-way digest (members.selectors.code_digest): a
    # file that names it again does not enrol the customer anew (docs/rules.md).
    erased_code = models.CharField(  # noqa: DJ001 - NULL for the many not erased: a partial index
        max_length=64, null=True, blank=True, editable=False
    )
    erased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        db_index=False,
    )
    # Two accounts of one customer joined (members.services.merge_members): this one is
    # closed, its points moved to `merged_into`, and its customer code finds that member
    # (members.selectors). Always an open member: merging the survivor later repoints it.
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="merged_members",
        db_index=False,  # member_merged_into below: only the closed few
    )
    merged_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The account its own merge (merged_at, merged_by) moved it into, for good:
    # `merged_into` names the account that holds its points now, another one once that
    # account was merged in turn (M7). None for an account merged again before this
    # was kept and whose merge the ledger does not tell (members 0022).
    merge_survivor = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        db_index=False,  # member_merge_survivor below: only the closed few
    )
    # When its points (and purchases) reached `merged_into`: its own merge, or the later
    # merge that repointed it, of the account it had been merged into (M7). Its
    # purchases count as the survivor's from then (the tier history's explanations).
    merged_into_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Who referred this member, named at enrolment; paid at its first purchase (the
    # referral definition's points, points.services.referrals).
    referred_by = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="referrals",
        db_index=False,  # member_referred_by below: only referred members
    )
    # A status match running (tiers.services.grant_status): the effective tier is at
    # least this tier until the end of `granted_until` (TIME_ZONE); the nightly
    # degradation job ends it. Who and why: tiers.StatusGrant.
    granted_tier = models.ForeignKey(
        "tiers.Tier",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    granted_until = models.DateField(null=True, blank=True, editable=False)
    # A freeze (points.services.freezing): degradation and expiry skip the member until
    # this moment (the end of the last frozen day); after it, inactivity counts from it.
    frozen_until = models.DateTimeField(null=True, blank=True, editable=False)
    freeze_reason = models.CharField(
        max_length=255, blank=True, default="", db_default="", editable=False
    )
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        db_index=False,
    )

    class Meta:
        ordering = ["external_id"]
        indexes = [
            models.Index(
                fields=["erased_code"],
                name="member_erased_code",
                condition=models.Q(erased_code__isnull=False),
            ),
            # Degradation scans members by qualified tier and the start of inactivity (D2).
            models.Index(
                "qualified_tier",
                Coalesce("last_purchase_at", "joined_at"),
                name="member_inactive_since",
            ),
            # The dashboard's "at risk": the few members a status match or a freeze
            # holds, apart from the others (a partial index: most members have neither).
            models.Index(
                "qualified_tier",
                Coalesce("last_purchase_at", "joined_at"),
                name="member_held",
                condition=HELD,
            ),
            # The dashboard's "closest to the next tier": a short backward range scan;
            # and the member list sorted by lifetime points. The id last: the admin's
            # tiebreaker runs the column's way (checked_admin.OfferedSortsOnly), so the
            # index gives each page both ways with no sort of the members who tie (the
            # hundreds of thousands who never bought, at 0: 0.5 s per 100,000 a page).
            models.Index(fields=["lifetime_points", "id"], name="member_lifetime_points"),
            # The member list of one tier sorted by lifetime points (a marketer's list):
            # without it, the list walked member_lifetime_points past the members of the
            # other tiers (1.7 s a page at a million, 45 ms with it). The id last, as
            # above. One more index write on each purchase (5 µs: under 1%);
            # degradation's cost is said at effective_tier.
            models.Index(
                fields=["effective_tier", "lifetime_points", "id"], name="member_tier_lifetime"
            ),
            # The member list of one tier, newest first (a dashboard bar's list): without
            # it, the list walked the ids back past every newer member of the other tiers
            # (Silver: past the 300,000 newest, all Bronze, 150 ms at 1,300,000 members,
            # growing with each enrolment; 0.2 ms with it). One more index write on each
            # purchase, as above.
            models.Index(fields=["effective_tier", "id"], name="member_tier_newest"),
            # Merged accounts: a partial index, so a purchase of an open member (whose
            # update writes every index entry) writes nothing to it.
            models.Index(
                fields=["merged_into"],
                name="member_merged_into",
                condition=models.Q(merged_into__isnull=False),
            ),
            models.Index(
                fields=["merge_survivor"],
                name="member_merge_survivor",
                condition=models.Q(merge_survivor__isnull=False),
            ),
            models.Index(
                fields=["referred_by"],
                name="member_referred_by",
                condition=models.Q(referred_by__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="member_external_id_unique")
        ]
        permissions = [
            ("erase_member", "Can erase a member's personal data"),
            ("export_member", "Can export members' personal data"),
            ("merge_member", "Can merge a duplicate account into another member"),
            ("freeze_member", "Can pause a member's degradation and expiry (freeze)"),
            ("correct_birth_date", "Can correct a member's birth date"),
        ]

    def __str__(self):
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{self.external_id} {name}".strip()

    @classmethod
    def entry_tier(cls):
        """The tier every member joins in: the lowest threshold (T1). Found through the
        member's own relation, because tiers sits above members (it moves them)."""
        tier_model = cls._meta.get_field("qualified_tier").related_model
        return tier_model.objects.order_by("threshold").first()

    @property
    def is_degraded(self) -> bool:
        """The effective tier is not the qualified one: degraded (D2), or above it by a
        status match (granted_tier); tiers.services tells them apart by rank."""
        return self.effective_tier_id != self.qualified_tier_id

    def frozen_at(self, moment) -> bool:
        """Whether degradation and expiry skip the member at `moment` (a freeze)."""
        return self.frozen_until is not None and self.frozen_until > moment

    @property
    def is_merged(self) -> bool:
        """Closed by a merge: earns, redeems and is adjusted no more."""
        return self.merged_into_id is not None


class TierChange(models.Model):
    """One change of a member's qualified or effective tier (T4). Never edited."""

    class Reason(models.TextChoices):
        JOINED = "joined", "Joined"
        UPGRADE = "upgrade", "Upgrade"
        DOWNGRADE = "downgrade", "Downgrade (return)"
        DEGRADATION = "degradation", "Degradation (inactivity)"
        RESTORATION = "restoration", "Restoration (purchase)"
        RULES_CHANGED = "rules_changed", "Rules changed"
        MANUAL = "manual", "Manual adjustment"
        # A programme migrating in: the tier the member's opening lifetime points reach,
        # held in the programme before; not a tier-up (no bonus, no message).
        OPENING_BALANCE = "opening_balance", "Opening balance (migrated in)"
        # Two accounts joined: the survivor requalified with both accounts' points, the
        # duplicate back to the entry tier with none.
        MERGE = "merge", "Accounts merged"
        # A status match: a tier granted until a date (no bonus), and its end.
        STATUS_MATCH = "status_match", "Status match"
        STATUS_MATCH_ENDED = "status_match_ended", "Status match ended"

    # History is written in bulk by the periodic jobs: only the indexes in Meta, and no
    # database-level check of the tier and user references per row (PROTECT still
    # stops the ORM from deleting a tier or user that history names).
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="tier_changes", db_index=False
    )
    reason = models.CharField(max_length=20, choices=Reason.choices)
    # from/to are the effective tier, the one benefits follow.
    from_tier = models.ForeignKey(
        "tiers.Tier",
        models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
    )
    to_tier = models.ForeignKey(
        "tiers.Tier", models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    qualified_tier = models.ForeignKey(
        "tiers.Tier", models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    changed_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    # A drop for inactivity: the end of the member's freeze as it was made, if any, its
    # days without a purchase counting from it (G6); a later freeze, or one a merge
    # carries, replaces it on the member. Null for other changes.
    frozen_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        indexes = [
            models.Index(fields=["member", "-changed_at"]),
            # The history list, newest first: a bulk job records thousands of changes
            # at one moment, which the id orders without sorting them.
            models.Index(fields=["changed_at", "id"], name="tierchange_changed_at_id"),
            # The list filtered by a reason: "joined" lies a year back, under millions
            # of later changes the list read through to find it (1.1 s at a million).
            models.Index(
                fields=["reason", "changed_at", "id"], name="tierchange_reason_changed_at"
            ),
        ]

    def __str__(self):
        came_from = f"{self.from_tier} → " if self.from_tier_id else ""
        return f"{self.member.external_id}: {came_from}{self.to_tier} ({self.get_reason_display()})"


class Notification(models.Model):
    """Outbox of messages to members, sent by a Celery task."""

    class Kind(models.TextChoices):
        TIER_UP = "tier_up", "Tier up"
        DEGRADATION = "degradation", "Degradation"
        RESTORATION = "restoration", "Restoration"
        EXPIRY_REMINDER = "expiry_reminder", "Expiry reminder"
        STATUS_MATCH = "status_match", "Status match"
        STATUS_MATCH_ENDED = "status_match_ended", "Status match ended"

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    context = models.JSONField(default=dict, blank=True)
    # Set when the message is about a tier change: its template reads the tiers there.
    # History is never deleted, so no database check per row of a mass degradation.
    tier_change = models.ForeignKey(
        TierChange,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    # Expiry reminders: the cutoff and the points at stake (E4).
    cutoff = models.DateField(null=True, blank=True)
    points = models.BigIntegerField(null=True, blank=True)
    # An expiry reminder sent whose figure a merge changed since (the account kept holds
    # both accounts' points at stake): the reminder run tells the member once more
    # (points.services.expiry.retell_after_merge). One reminder per cutoff not out of date.
    outdated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # A message the mail server refused (an address, a header): tried again, after the
    # messages never tried, so that it holds none of them up, for REFUSED_FOR_AT_MOST.
    # (Defaults in the database too: the bulk jobs insert messages in SQL.)
    failed_attempts = models.PositiveIntegerField(default=0, db_default=0)
    last_error = models.CharField(max_length=255, blank=True, default="", db_default="")
    first_refused_at = models.DateTimeField(null=True, blank=True, editable=False)
    # What the member was sent, as sent: the page shows it, not the message written again
    # from today's names and tiers. Emptied when the member is erased.
    sent_to = models.CharField(max_length=254, blank=True, default="", db_default="")
    sent_text = models.TextField(blank=True, default="", db_default="")

    # A message refused for this long is given up, as a webhook delivery is (W*).
    REFUSED_FOR_AT_MOST = timedelta(hours=24)

    class Meta:
        ordering = ["-created_at", "-pk"]
        # An agent who corrected a member's address sends what the server refused.
        permissions = [("send_again_notification", "Can send refused messages again")]
        indexes = [
            # The CX Manager's list of messages filtered by kind, newest written first.
            models.Index(fields=["kind", "id"], name="notification_kind"),
            models.Index(
                fields=["failed_attempts", "id"],
                name="notification_to_send",
                condition=models.Q(sent_at=None),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "cutoff"],
                condition=models.Q(kind="expiry_reminder", outdated_at=None),
                name="one_expiry_reminder_per_cutoff",
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.member.external_id}"

    @staticmethod
    def sent_fields(email) -> dict:
        """What is kept of an e-mail sent (django.core.mail.EmailMessage): its address,
        and its subject and text (sent_copy reads them back)."""
        return {"sent_to": email.to[0], "sent_text": f"{email.subject}\n\n{email.body}"}

    @property
    def sent_copy(self) -> tuple[str, str, str] | None:
        """(address, subject, text) as sent; None when no copy was kept."""
        if not self.sent_text:
            return None
        subject, _, body = self.sent_text.partition("\n\n")
        return self.sent_to, subject, body

    @classmethod
    def given_up(cls, now) -> models.Q:
        """The unsent messages the mail server has refused for REFUSED_FOR_AT_MOST."""
        return models.Q(sent_at=None, first_refused_at__lte=now - cls.REFUSED_FOR_AT_MOST)
