"""API keys: created with their own account, revoked for good."""

from django.contrib.auth import get_user_model
from django.db import transaction

from api.models import ApiKey


def create_api_key(*, name, channel, store="", expiry_date=None) -> tuple[ApiKey, str]:
    """A new key and its secret, which is shown once and never stored (only its hash)."""
    with transaction.atomic():
        key = ApiKey(name=name, channel=channel, store=store, expiry_date=expiry_date)
        secret = ApiKey.objects.assign_key(key)
        user = get_user_model()(username=f"api-key-{key.prefix}", first_name=name[:150])
        user.is_active = False  # the key's account can never log in
        user.set_unusable_password()
        user.save()
        key.user = user
        key.save()
    return key, secret


def revoke_api_key(*, key: ApiKey) -> bool:
    """Revokes the key for good: from now on it answers 401. False when it was revoked
    already (revoking twice changes nothing)."""
    revoked = ApiKey.objects.filter(pk=key.pk, revoked=False).update(revoked=True)
    key.revoked = True
    return bool(revoked)
