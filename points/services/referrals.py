"""Points the programme gives itself, beyond the purchase (DESIGN.md, "Earning beyond
the purchase"): welcome points on enrolment, once per member, and the referrer's
points at a referred member's first purchase, once per referred member. Each entry
has an external_id made of the member's id, so the ledger's unique index makes
"once" hold whatever the door or the race."""

from members.models import Member
from members.selectors import owner, survivors_of
from points.models import REFERRAL_KEY, WELCOME_KEY, AwardedOn, PointDefinition
from points.selectors import Programme, programme
from points.services.posting import Movement, earning, entry_of, lock, post_entries


def programme_award(plan: Programme, occasion: str) -> PointDefinition | None:
    """The active definition given on this occasion (AwardedOn), if the marketers set
    one (at most one: PointDefinition's constraint)."""
    for definition in plan.definitions.values():
        if definition.awarded_on == occasion and definition.is_active:
            return definition
    return None


def welcome_movement(plan: Programme, *, at) -> Movement | None:
    """The welcome points of a member enrolled at `at`: the enrolment definition's
    points, issued when the member joined, available after its delay (P5)."""
    definition = programme_award(plan, AwardedOn.ENROLMENT)
    if definition is None or not definition.points:
        return None
    return earning(definition, definition.points, at=at, reason=definition.name)


def award_welcome(member, *, by=None) -> Member:
    """enroll_member's welcome points, in its transaction: the new member locked, its
    entry written through the one ledger writer (a tier reached by tier-counting
    welcome points is a tier-up like any other). Returns the member as it leaves it."""
    if welcome_movement(programme(), at=member.joined_at) is None:
        return member  # no welcome points: nothing to lock
    member, plan, _ = lock(member)
    move = welcome_movement(plan, at=member.joined_at)  # the programme as locked
    if move is not None:
        entry = entry_of(member, move, created_by=by, external_id=f"{WELCOME_KEY}{member.pk}")
        post_entries(member, plan, [entry], at=member.joined_at, by=by)
    return member


def referral_due(member, plan: Programme) -> PointDefinition | None:
    """The referral definition to pay at this purchase of a locked member, asked
    before the purchase is counted: a referred member's first purchase (none recorded
    before) when the marketers have an active referral definition."""
    if member.referred_by_id is None or member.last_purchase_at is not None:
        return None
    definition = programme_award(plan, AwardedOn.REFERRAL)
    return definition if definition and definition.points else None


def referral_movement(friend, referrer, definition: PointDefinition, *, at, external_id):
    """The referrer's points for `friend`'s first purchase (`external_id`), issued at
    its time, or when the referrer joined if that is later (a file of older purchases):
    no points, and no tier, before a member joins."""
    reason = f"Referral: {friend.external_id} made a first purchase ({external_id})"
    return earning(definition, definition.points, at=max(at, referrer.joined_at), reason=reason)


def pays(friend, referrer) -> bool:
    """Whether the referrer's account (its survivor, if merged) is paid for the friend's
    first purchase: not when it was merged into the friend's own, nor when it was
    erased since (the customer asked to be forgotten: enrolment refuses an erased
    referrer too, and a payment would move its tier and queue it a message)."""
    return referrer.pk != friend.pk and referrer.erased_at is None


def referral_key(friend) -> str:
    return f"{REFERRAL_KEY}{friend.pk}"


def referrers_of(codes):
    """The members whose referral the first purchases of the members with these
    customer codes may pay (their referrers' survivors), as `owner_id` values: an
    import locks them with the file's members, in one statement in id order."""
    friends = survivors_of(codes).filter(referred_by__isnull=False, last_purchase_at=None)
    return Member.objects.filter(pk__in=friends.values("referred_by")).values(owner_id=owner())


def lock_referrer_first(friend: Member) -> None:
    """Before a purchase locks `friend`: when it may be a referred member's first,
    lock the referrer (older: a lower id) first, in the id order every writer and an
    import (referrers_of) keep, so that neither waits on the other for ever.
    pay_referral then finds it held."""
    if friend.referred_by_id is None or friend.last_purchase_at is not None:
        return
    if programme_award(programme(), AwardedOn.REFERRAL) is None:
        return
    # The account paid: the referrer's survivor if it was merged (pay_referral's), when
    # it comes first in id order; one that comes after is locked after the friend.
    paid = Member.objects.filter(pk=friend.referred_by_id).values(owner_id=owner())
    Member.objects.select_for_update(of=("self",)).filter(pk__in=paid, pk__lt=friend.pk).exists()


def pay_referral(friend, definition: PointDefinition, *, at, external_id, by=None) -> None:
    """Pay the referrer of a locked friend whose first purchase was just recorded, in
    the same transaction; the purchase locked the referrer first (lock_referrer_first).
    A referrer merged since is paid on its survivor."""
    referrer = type(friend)(pk=friend.referred_by_id)
    referrer, plan, _ = lock(referrer, follow_merge=True)
    if not pays(friend, referrer):
        return
    move = referral_movement(friend, referrer, definition, at=at, external_id=external_id)
    entry = entry_of(referrer, move, created_by=by, external_id=referral_key(friend))
    post_entries(referrer, plan, [entry], at=move.issued_at, by=by)
