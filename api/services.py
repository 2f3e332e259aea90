"""API keys: created with their own account, revoked for good. First answers kept for
repeats, dropped when old or when their customer is erased."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from api.models import ApiKey, CodesToForget, FirstAnswer
from core.jobs import id_chunks

PRUNE_CHUNK = 10_000


def create_api_key(*, name, channel, store="", expiry_date=None) -> tuple[ApiKey, str]:
    """A new key and its secret, which is shown once and never stored (only its hash)."""
    with transaction.atomic():
        key = ApiKey(name=name, channel=channel, store=store, expiry_date=expiry_date)
        secret = ApiKey.objects.assign_key(key)
        user = get_user_model()(username=account_name(key), first_name=name[:150])
        user.is_active = False  # the key's account can never log in
        user.set_unusable_password()
        user.save()
        key.user = user
        key.save()
    return key, secret


def account_name(key: ApiKey) -> str:
    """The name of a key's account, which staff read wherever a change is attributed to
    the key (ledger, tier history, admin history): "Till 12 (API key 8mLfbn03)". Unique
    by its prefix; a staff user's name cannot hold a space, so none is the same."""
    return f"{key.name} (API key {key.prefix})"


def save_api_key(*, key: ApiKey) -> None:
    """Save a key changed by a superuser (name, store, expiry, revoked), and name its
    account after it: the changes the key made, and will make, read its new name."""
    with transaction.atomic():
        key.save()
        get_user_model().objects.filter(pk=key.user_id).update(
            username=account_name(key), first_name=key.name[:150]
        )


def revoke_api_key(*, key: ApiKey) -> bool:
    """Revokes the key for good: from now on it answers 401. False when it was revoked
    already (revoking twice changes nothing)."""
    revoked = ApiKey.objects.filter(pk=key.pk, revoked=False).update(revoked=True)
    key.revoked = True
    return bool(revoked)


def prune_first_answers(*, now=None) -> int:
    """Drop the first answers older than API_REPEAT_ANSWER_DAYS, a chunk at a time (one
    API transaction keeps one, so millions a month): an exact repeat after that is
    answered with the figures as they are then. Safe to run twice or at once."""
    now = now or timezone.now()
    old = FirstAnswer.objects.filter(
        created_at__lt=now - timedelta(days=settings.API_REPEAT_ANSWER_DAYS)
    )
    dropped = 0
    while ids := list(old.order_by("created_at").values_list("pk", flat=True)[:PRUNE_CHUNK]):
        dropped += FirstAnswer.objects.filter(pk__in=ids).delete()[0]
    return dropped


def codes_erased(sender, codes, **kwargs) -> None:
    """members.signals.member_codes_erased, in the erasure's transaction: the codes are
    kept until their first answers are dropped (forget_erased_codes, in a worker)."""
    CodesToForget.objects.create(codes=sorted(codes))


def forget_erased_codes() -> int:
    """Drop the first answers naming the codes erasures replaced, then those codes: one
    scan of the answers for all the erasures waiting. Queued at each erasure's commit,
    and run by the daily pruning for any whose worker was lost; safe to run twice or at
    once. Returns how many answers were dropped."""
    erased = list(CodesToForget.objects.values_list("pk", "codes"))
    if not erased:
        return 0
    dropped = forget_first_answers(sorted({code for _, codes in erased for code in codes}))
    CodesToForget.objects.filter(pk__in=[pk for pk, _ in erased]).delete()
    return dropped


def forget_first_answers(codes: list[str]) -> int:
    """Drop the first answers that name these customer codes (an erasure's: the body's
    `member` keeps the code the answer was given for). A range of ids at a time: the
    table holds a month of the API's writes, and no index reads bodies. Returns how
    many."""
    naming = FirstAnswer.objects.filter(body__member__in=codes)
    return sum(
        naming.filter(pk__gte=first, pk__lte=last).delete()[0]
        for first, last in id_chunks(FirstAnswer, PRUNE_CHUNK)
    )
