"""The admin's history of what a key changed: the same LogEntry rows the CX Manager
writes when an agent enrols a member or redeems, by the key's account, so the member
page's history shows who did what, whether a person or a till."""

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Value
from django.db.models.functions import Concat, Left, StrIndex

from api.models import ApiKey


def log_api_change(key: ApiKey, obj, message: str, *, action_flag=CHANGE) -> LogEntry:
    """One history row on `obj`: "<message> through the API", by the key's account,
    which names the key ("Till 12 (API key 8mLfbn03)") as it is called now, also after
    a rename. Called in the transaction of the change, so a rolled-back change leaves
    no row."""
    return LogEntry.objects.create(
        user_id=key.user_id,
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=action_flag,
        change_message=message + THROUGH_THE_API,
    )


# What a key's rows say, and what they said before they named it by its account (api
# 0014).
THROUGH_THE_API = " through the API"
_NAMED_IN_TEXT = THROUGH_THE_API + " key "


def name_keys_by_their_accounts() -> int:
    """Rewrite the history rows that name a key in their text, "... through the API key
    Till 3", to "... through the API", as api 0014 rewrote the older ones: the web of
    the release before writes them while the new release migrates (finish_upgrade). One
    statement; safe to run again: it finds none then. Returns how many it rewrote."""
    rows = LogEntry.objects.filter(
        user__in=ApiKey.objects.values("user"), change_message__contains=_NAMED_IN_TEXT
    ).exclude(change_message__endswith=THROUGH_THE_API)  # a reward named with the words
    return rows.update(
        change_message=Concat(
            Left("change_message", StrIndex("change_message", Value(_NAMED_IN_TEXT)) - 1),
            Value(THROUGH_THE_API),
        )
    )
