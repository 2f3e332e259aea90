from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager

from core import models as core_models
from core.db import Compiled, fetch_prepared


class ApiKeyManager(APIKeyManager):
    def get_usable_keys(self):
        return super().get_usable_keys().select_related("user")

    def get_from_key(self, key: str) -> "ApiKey":
        """The library's, with the key's account, in one prepared statement: every
        request asks."""
        row = _usable_key.first(prefix=key.partition(".")[0])
        if row is None:
            raise self.model.DoesNotExist("No usable key has this prefix.")
        api_key = self.model.from_db(DEFAULT_DB_ALIAS, _KEY_FIELDS, row[: len(_KEY_FIELDS)])
        user = get_user_model().from_db(DEFAULT_DB_ALIAS, _user_fields(), row[len(_KEY_FIELDS) :])
        api_key.user = user
        if not api_key.is_valid(key):
            raise self.model.DoesNotExist("Key is not valid.")
        return api_key


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


_KEY_FIELDS = [field.attname for field in ApiKey._meta.concrete_fields]


def _user_fields():
    return [field.attname for field in get_user_model()._meta.concrete_fields]


_usable_key = Compiled(
    lambda prefix: (
        ApiKey.objects.get_usable_keys()
        .filter(prefix=prefix)
        .values_list(*_KEY_FIELDS, *(f"user__{name}" for name in _user_fields()))
    ),
    prefix="\x00",  # no prefix has one
)


class FirstAnswer(models.Model):
    """The body of the first answer to a write, given again to an exact repeat (P8: "an
    exact repeat 200 with the same body"): the summary in a transaction's is the member
    as that transaction left them, a redemption's is the redemption as it was made, a
    voucher use's the voucher as it was used (held by the account that used it), whatever
    happened after."""

    class Kind(models.TextChoices):
        TRANSACTION = "transaction"
        REDEMPTION = "redemption"
        VOUCHER_USE = "voucher_use"

    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.TRANSACTION)
    external_id = models.CharField(max_length=100)
    body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "external_id"], name="first_answer_unique")
        ]
        # The daily pruning finds old answers by it (api.services.prune_first_answers).
        indexes = [models.Index(fields=["created_at"], name="first_answer_created_at")]

    def __str__(self):
        return f"{self.kind} {self.external_id}"

    @classmethod
    def keep(cls, external_id: str, body: dict, *, kind=Kind.TRANSACTION, first=True) -> None:
        """Keep the first answer (`first`: the answer of the write itself), in place of
        one a repeat answered and kept while it was on its way, which later repeats then
        no longer give; a repeat's is kept only if none is. One prepared statement:
        every transaction the API records keeps one."""
        db = connections[DEFAULT_DB_ALIAS]
        body_param = cls._meta.get_field("body").get_db_prep_value(body, db)
        sql = _KEEP_FIRST_SQL if first else _KEEP_REPEAT_SQL
        fetch_prepared(sql, [kind, external_id, body_param, timezone.now()])

    @classmethod
    def of(cls, external_id: str, *, kind=Kind.TRANSACTION) -> dict | None:
        """The body kept for this write, if any."""
        first = cls.objects.filter(kind=kind, external_id=external_id).first()
        return first and first.body


class CodesToForget(models.Model):
    """The customer codes an erasure replaced, until the first answers naming them are
    dropped (api.services.forget_erased_codes). Written in the erasure's transaction: a
    worker lost just after its commit, or the task's message lost with the broker,
    leaves them to the daily pruning, never in the answers for their 30 days."""

    codes = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return (
            f"{len(self.codes)} codes erased {timezone.localtime(self.created_at):%Y-%m-%d %H:%M}"
        )


_KEEP_SQL = (
    f"INSERT INTO {FirstAnswer._meta.db_table} (kind, external_id, body, created_at)"
    " VALUES (%s, %s, %s, %s) ON CONFLICT (kind, external_id) DO {} RETURNING id"
)
_KEEP_FIRST_SQL = _KEEP_SQL.format("UPDATE SET body = EXCLUDED.body")
_KEEP_REPEAT_SQL = _KEEP_SQL.format("NOTHING")


class WebhookEndpoint(core_models.WebhookEndpoint):
    """The endpoints, listed in the CX Manager beside the API keys (the rows are core's:
    every domain app writes their deliveries)."""

    class Meta:
        proxy = True
        verbose_name = "webhook endpoint"


class WebhookDelivery(core_models.WebhookDelivery):
    class Meta:
        proxy = True
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
