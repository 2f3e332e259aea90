"""Reads of members that every door shares: which member a customer code names, and
which tier a member had at a moment.

A merged account (Member.merged_into) is closed, and its customer code names the
member it was merged into, the survivor: in the API, the imports, the grants and the
admin's search. `merged_into` always names an open member (merging a survivor later
repoints the accounts merged into it), so one step finds the survivor."""

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import BigIntegerField, Case, F, OuterRef, Q, Subquery, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.dateformat import format as date_format

from core.ids import canonical_id
from members.models import Member, TierChange


def owner(path: str = "pk"):
    """The id of the member that holds a member's points now: its survivor if it was
    merged, itself otherwise. `path` names the member (or, on another model, the
    foreign key to it: owner("member"))."""
    merged = "merged_into" if path == "pk" else f"{path}__merged_into"
    return Coalesce(F(merged), F(path))


def owner_unless_erased(path: str = "pk"):
    """owner(path), or None for a member erased since (GDPR): its customer code is gone,
    so a row imported for it and sent again names no member now, and the rest of the
    row decides whether it says the same."""
    erased = "erased_at" if path == "pk" else f"{path}__erased_at"
    return Case(
        When(**{f"{erased}__isnull": False}, then=None),
        default=owner(path),
        output_field=BigIntegerField(),
    )


def effective_tier_at(moment):
    """An expression on Member: the id of the effective tier the member had at `moment`,
    as the tier history (T4) tells it: the tier the first change recorded since then
    took the member from, or, with none, the tier they have now (joining is no change:
    it comes from no tier). Changes count in the order they were recorded, as in the
    analytics (points.services.sql.counted_with_moves): a back-dated change recorded
    after one since `moment` counts from that one. Only the members changed since are
    looked up, one index probe each."""
    since = TierChange.objects.filter(changed_at__gte=moment, from_tier__isnull=False)
    first_since = since.filter(member=OuterRef("pk")).order_by("pk").values("from_tier")[:1]
    return Case(
        When(pk__in=since.values("member"), then=Subquery(first_since)),
        default=F("effective_tier"),
        output_field=Member._meta.get_field("effective_tier"),
    )


def tier_at(member: Member, moment) -> int:
    """The id of the effective tier `member` had at `moment` (effective_tier_at): one
    query."""
    tiers = Member.objects.filter(pk=member.pk).annotate(then=effective_tier_at(moment))
    return tiers.values_list("then", flat=True).get()


def by_code(code: str):
    """The member (a queryset of at most one) a customer code names: the survivor of a
    merged code. One statement: the code's row by its unique index, then the owner."""
    named = Member.objects.filter(external_id=code).values(owner_id=owner())[:1]
    return Member.objects.filter(pk=Subquery(named))


def survivors_of(codes):
    """The members these customer codes (a list or a subquery) name, merged codes
    resolved (by_code, for many)."""
    named = Member.objects.filter(external_id__in=codes).values(owner_id=owner())
    return Member.objects.filter(pk__in=named)


def merged_codes(codes) -> dict[str, int]:
    """Of these customer codes, those of merged accounts, with their survivor's id.
    Read through the partial index of merged accounts: cheap whatever the codes."""
    return dict(
        Member.objects.filter(merged_into__isnull=False, external_id__in=codes).values_list(
            "external_id", "merged_into"
        )
    )


def survivor_of_search(term: str) -> int | None:
    """The survivor of a merged account whose customer code is `term` (any case), for
    the admin's search; None when `term` is no merged code."""
    term = term.strip()
    if not term or "\x00" in term:
        return None
    return (
        Member.objects.filter(merged_into__isnull=False, external_id__iexact=term)
        .values_list("merged_into", flat=True)
        .first()
    )


# The most words of a name searched as a whole: "José Luis Fernández de la Cruz" has six.
WHOLE_NAME_WORDS = 6


def whole_name(term: str, path: str = "pk") -> Q | None:
    """Members whose name starts with `term` read as a whole, for the admin's search,
    which looks for each word on its own at the start of a field: a compound surname
    ("García López"), a compound first name ("María José"), or a first name then the
    surname ("María García López"). Each part is a prefix on its column's search index,
    without accents or case, as the admin's search compares names (core.folding).
    None for a single word (the admin's own search finds it), or too many to be a name.
    `path` names the member as owner() does."""
    words = term.split()
    if not 1 < len(words) <= WHOLE_NAME_WORDS or "\x00" in term:
        return None
    p = "" if path == "pk" else f"{path}__"
    first, last = f"{p}first_name__folded__startswith", f"{p}last_name__folded__startswith"
    found = Q(**{first: " ".join(words)}) | Q(**{last: " ".join(words)})
    for split in range(1, len(words)):
        found |= Q(**{first: " ".join(words[:split]), last: " ".join(words[split:])})
    return found


def accounts_merged_into(member: Member):
    """The accounts whose points `member` received by a merge, newest merge first:
    those its own merges closed, and those merged into them before, whose points came
    with theirs (M7; `merge_survivor` names the account each was merged into). For a
    closed account, those its merges closed."""
    named = Q(merge_survivor=member) | Q(merged_into=member)
    return Member.objects.filter(named).select_related("merge_survivor").order_by("-merged_at")


def check_not_erased(member: Member, what: str) -> None:
    """An erased member's account keeps its points and tier, but nothing new is
    recorded about the customer, who asked to be forgotten: `what` (a freeze, a status
    match) would come with a reason, often about their health."""
    if member.erased_at:
        raise ValidationError(
            f"This member's personal data was erased: {what} would record something new "
            "about a customer who asked to be forgotten."
        )


def check_open(member: Member) -> None:
    """A merged account earns, redeems and is adjusted no more: refused with the
    account its own merge moved it into, and the code of the account that holds its
    points now, which the agent or the till should use instead (the same account
    unless that one was merged in turn, M7)."""
    if member.merged_into_id is None:
        return
    codes = dict(
        Member.objects.filter(pk__in=[member.merged_into_id, member.merge_survivor_id]).values_list(
            "pk", "external_id"
        )
    )
    holder = codes[member.merged_into_id]
    into = f" into {codes[member.merge_survivor_id]}" if member.merge_survivor_id else ""
    when = date_format(timezone.localtime(member.merged_at), "j M Y") if member.merged_at else ""
    raise ValidationError(
        f"{member.external_id} was merged{into}{' on ' + when if when else ''} and is closed: "
        f"use {holder} instead.",
        code="merged",
    )


def code_digest(code: str, *, secret=None) -> str:
    """A customer code, one way: what an erased account keeps of its code (erased_code),
    so that it is known again without being kept. Keyed with SECRET_KEY (or `secret`):
    a plain hash of the few codes a brand's format allows is undone by trying them all
    (an audit found M-ZQ-777 in a second)."""
    plain = hashlib.sha256(f"erased customer code:{canonical_id(code)}".encode()).hexdigest()
    return keyed_digest(plain, secret=secret)


def keyed_digest(plain: str, *, secret=None) -> str:
    """The plain SHA-256 of a code (what members 0030 to 0033 kept), keyed."""
    return salted_hmac("members.erased_code", plain, secret=secret, algorithm="sha256").hexdigest()


def erased_codes(codes) -> set[str]:
    """The codes among `codes` that belonged to customers erased at their request, under
    the key of today or of before (SECRET_KEY_FALLBACKS, while a key is rotated)."""
    codes = list(codes)
    digests = {
        code_digest(code, secret=secret): code
        for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
        for code in codes
    }
    found = Member.objects.filter(erased_code__in=digests).values_list("erased_code", flat=True)
    return {digests[digest] for digest in found}
