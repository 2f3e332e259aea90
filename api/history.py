"""The admin's history of what a key changed: the same LogEntry rows the CX Manager
writes when an agent enrols a member or redeems, by the key's account, so the member
page's history shows who did what, whether a person or a till."""

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

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
        change_message=f"{message} through the API",
    )
