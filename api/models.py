from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager


class ApiKeyManager(APIKeyManager):
    def get_usable_keys(self):
        return super().get_usable_keys().select_related("user")


class ApiKey(AbstractAPIKey):
    """A till's, web shop's or app's key. Only its hash is stored (the library's
    prefix and SHA-512 hash). Each key acts as its own staff account (`user`: no
    password, cannot log in), so the ledger's `created_by` and the admin's history name
    the key that made a change, as they name a CX agent."""

    class Channel(models.TextChoices):
        POS = "pos", "Point of sale"
        ECOMMERCE = "ecommerce", "E-commerce"
        API = "api", "API"

    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.API)
    store = models.CharField(
        max_length=50, blank=True, help_text="Leave empty to take the store from each request."
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_key", editable=False
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def mark_used(self, now=None) -> None:
        """Record when the key was last used, at most once a minute: one small write,
        not one per request."""
        now = now or timezone.now()
        if self.last_used_at is None or (now - self.last_used_at).total_seconds() >= 60:
            ApiKey.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now


class FirstAnswer(models.Model):
    """The body of the first answer to a transaction, given again to an exact repeat
    (P8: "an exact repeat 200 with the same body"): the summary in it is the member as
    that transaction left them, whatever was recorded after."""

    external_id = models.CharField(max_length=100, unique=True)
    body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.external_id
