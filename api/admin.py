"""API keys and webhooks in the CX Manager, for superusers only: a key is a way into
every member's points, and an endpoint hears about every member. Keys and secrets are
created through the services and shown once; keys are revoked and endpoints switched
off, never deleted."""

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from rest_framework_api_key.models import APIKey

from api import webhook_endpoints, webhooks
from api.models import ApiKey, WebhookDelivery, WebhookEndpoint
from api.services import create_api_key, revoke_api_key, save_api_key
from api.webhook_bodies import carries_its_data
from core.admin import LABELLED_MOMENTS, ChangedOnPageForm, action_confirmation, chosen_for_action
from core.events import EventType
from core.paginator import CappedPaginator
from members.models import Member

# The library registers an admin of its own model, which the API does not use.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


# Keys named on one confirmation page: a handful in practice, never "select all" of many.
REVOKE_AT_MOST = 100


class SuperuserOnlyAdmin(admin.ModelAdmin):
    """Seen and used by superusers only, in every view and action; never deleted."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False


class ApiKeyForm(forms.ModelForm):
    def clean_expiry_date(self):
        expiry = self.cleaned_data["expiry_date"]
        # A new key already expired would answer 401 from its first use; an existing
        # key may be given a past expiry: it stops at once.
        if self.instance._state.adding and expiry and expiry <= timezone.now():
            raise ValidationError("A new key's expiry must be in the future.")
        return expiry


@admin.register(ApiKey)
class ApiKeyAdmin(SuperuserOnlyAdmin):
    form = ApiKeyForm
    formfield_overrides = LABELLED_MOMENTS
    list_display = ["name", "prefix", "channel", "store", "created", "expiry_date", "state", "used"]
    search_fields = ["name", "=prefix"]
    show_full_result_count = False
    actions = ["revoke"]

    def has_revoke_permission(self, request):
        return request.user.is_superuser

    @admin.display(description="State", ordering="revoked")
    def state(self, key):
        """Revoked or expired in words (a red cross for "not revoked" reads as a fault)."""
        if key.revoked:
            return "Revoked"
        return "Expired" if key.has_expired else "Active"

    @admin.display(description="Last used", ordering="last_used_at", empty_value="Never")
    def used(self, key):
        return key.last_used_at

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "channel", "store", "expiry_date"]
        return [
            "name",
            "prefix",
            "channel",
            "store",
            "expiry_date",
            "revoked",
            "created",
            "last_used_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        fixed = ["prefix", "channel", "created", "last_used_at"]
        if obj.revoked:  # revoking cannot be undone; a revoked key is history
            fixed += ["name", "store", "expiry_date", "revoked"]
        return fixed

    def save_model(self, request, obj, form, change):
        if change:
            save_api_key(key=obj)
            return
        key, secret = create_api_key(
            name=obj.name, channel=obj.channel, store=obj.store, expiry_date=obj.expiry_date
        )
        # The admin goes on (history, redirect) with the object it gave: make it the key.
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(key, field.attname))
        obj._state.adding, obj._state.db = False, key._state.db
        self.message_user(
            request,
            format_html(
                "The API key of “{}” is <code>{}</code>. Store it now: it cannot be seen "
                "again (only its hash is kept).",
                key.name,
                secret,
            ),
            messages.WARNING,
        )

    @admin.action(permissions=["revoke"], description="Revoke the selected keys")
    def revoke(self, request, queryset):
        """After a confirmation page naming each key still working: revoking cannot be
        undone, and the tills using a key stop at once."""
        too_many = f"Revoke at most {REVOKE_AT_MOST} keys at once: find them with the search."
        rows = queryset.filter(revoked=False)
        chosen = chosen_for_action(self, request, rows, limit=REVOKE_AT_MOST, too_many=too_many)
        if chosen is None:
            return None
        if chosen and request.POST.get("confirm") != "yes":
            return action_confirmation(
                self,
                request,
                "admin/api/apikey/revoke_confirmation.html",
                chosen,
                title="Revoke these API keys?",
                keys=chosen,
            )
        revoked = 0
        for key in chosen:
            with transaction.atomic():  # the revocation and its history line
                if revoke_api_key(key=key):
                    self.log_change(request, key, "Revoked")
                    revoked += 1
        self.message_user(request, f"{revoked} key(s) revoked: they answer 401 from now on.")


class EndpointForm(ChangedOnPageForm):
    """An endpoint's page: only what the superuser changed there is written, so a page
    opened before the sender switched the endpoint off (410 Gone) does not switch it on
    again by being saved."""

    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="transaction.recorded is one event per purchase, return and action.",
    )
    own_hosts: list[str] = []  # where this application is reached (set per request)

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events", "is_active"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            webhook_endpoints.check_url(url, own_hosts=self.own_hosts)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["url"]) from exc
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(SuperuserOnlyAdmin):
    form = EndpointForm
    list_display = [
        "__str__",
        "url",
        "event_list",
        "is_active",
        "switched_off_reason",
        "paused_until",
        "created_at",
        "deliveries",
    ]
    list_filter = ["is_active"]
    actions = ["rotate"]

    def get_fields(self, request, obj=None):
        """Why the sender switched it off, above the form, while it is off for that."""
        fields = [f for f in super().get_fields(request, obj) if f != "switched_off_reason"]
        if obj is not None and obj.switched_off_reason:
            return ["switched_off_reason", *fields]
        return fields

    def get_readonly_fields(self, request, obj=None):
        return ["switched_off_reason"]

    def has_rotate_permission(self, request):
        return request.user.is_superuser

    @admin.action(permissions=["rotate"], description="Give the selected endpoints new secrets")
    def rotate(self, request, queryset):
        """A secret leaked, or due for a change: the new one is shown once; the old one
        signs beside it for a day, so that the receiver changes without losing events."""
        for endpoint in queryset:
            # The new secret and its history line together: a secret committed but never
            # shown (the page failing between them) would leave the receiver refusing all.
            again = webhook_endpoints.old_secrets(endpoint, at=timezone.now())
            with transaction.atomic():
                secret = webhook_endpoints.rotate_secret(endpoint)
                self.log_change(request, endpoint, "Signing secret rotated")
            until = timezone.localtime(timezone.now() + webhook_endpoints.OLD_SECRET_SIGNS)
            self.message_user(
                request,
                format_html(
                    "The new signing secret of {} is <code>{}</code>. Give it to the receiver "
                    "now: it is not shown again. {} until {}.",
                    endpoint,
                    secret,
                    "The secrets it replaces sign too" if again else "The old one signs too",
                    f"{until:%-d %b %Y %H:%M}",
                ),
                messages.WARNING,
            )

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        # The names this application answers to, on the port it is reached at and on
        # the web's own (behind a proxy that ends TLS, the request's port is not 443).
        ports = {request.get_port(), "80", "443"}
        names = [h for h in settings.ALLOWED_HOSTS if h != "*" and not h.startswith(".")]
        form.own_hosts = [request.get_host(), *(f"{n}:{p}" for n in names for p in ports)]
        return form

    @admin.display(description="Events")
    def event_list(self, endpoint):
        return ", ".join(endpoint.events)

    @admin.display(description="Deliveries")
    def deliveries(self, endpoint):
        url = reverse("admin:api_webhookdelivery_changelist")
        return format_html('<a href="{}?endpoint__id__exact={}">Deliveries</a>', url, endpoint.pk)

    def save_model(self, request, obj, form, change):
        try:
            webhook_endpoints.save_endpoint(obj)
        except ValidationError as exc:  # checked by the form; a race is still told
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return
        if not change:
            self.message_user(
                request,
                format_html(
                    "The signing secret of this endpoint is <code>{}</code>. Give it to "
                    "the receiver now: it is not shown again.",
                    obj.secret,
                ),
                messages.WARNING,
            )


class EventTypeFilter(admin.SimpleListFilter):
    """By event type, from the list of types: the field's own filter would read the
    types present from every delivery ever written, on every load of the list."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in EventType.values]

    def queryset(self, request, queryset):
        return queryset.filter(type=self.value()) if self.value() else queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(SuperuserOnlyAdmin):
    list_display = [
        "pk",
        "created_at",
        "type",
        "member_code",
        "endpoint",
        "status",
        "attempts",
        "last_answer",
        "last_attempt_at",
        "next_try",
    ]
    list_filter = ["status", EventTypeFilter, "endpoint"]
    list_select_related = ["endpoint"]
    search_fields = ["=member_id"]
    search_help_text = "Customer code"
    paginator = CappedPaginator
    show_full_result_count = False
    actions = ["resend"]
    fields = [
        "endpoint",
        "type",
        "member_code",
        "status",
        "attempts",
        "created_at",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "delivered_at",
        "body",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_resend_permission(self, request):
        return request.user.is_superuser

    def get_queryset(self, request):
        code = Member.objects.filter(pk=OuterRef("member_id")).values("external_id")
        return super().get_queryset(request).annotate(member_code=Subquery(code[:1]))

    def get_search_results(self, request, queryset, search_term):
        """By customer code: the member's id, then its deliveries (an indexed match)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        member = Member.objects.filter(external_id=term).values_list("pk", flat=True)
        return queryset.filter(member_id__in=list(member)), False

    @admin.display(description="Member")
    def member_code(self, delivery):
        return delivery.member_code

    @admin.display(description="Last answer")
    def last_answer(self, delivery):
        answer = delivery.last_error or delivery.last_status_code or "-"
        if not carries_its_data(delivery):  # an erasure's, done: the code it sent is gone
            return f"{str(answer).rstrip('.')}; customer code removed"
        return answer

    @admin.display(description="Next try", ordering="next_attempt_at")
    def next_try(self, delivery):
        if delivery.status != WebhookDelivery.Status.PENDING:
            return "-"
        return date_format(timezone.localtime(delivery.next_attempt_at), "DATETIME_FORMAT")

    @admin.display(description="Body")
    def body(self, delivery):
        if not carries_its_data(delivery):
            return "Scrubbed: the customer code it sent was removed once it was done."
        # "José" as staff read it; the wire's copy escapes it (\u00e9), the same JSON
        sent = webhooks.payload(delivery)
        if sent is None:
            return "None: what it reported is gone (a reminder dropped by a merge or an erasure)."
        return format_html("<pre>{}</pre>", json.dumps(sent, indent=2, ensure_ascii=False))

    @admin.action(permissions=["resend"], description="Resend the selected deliveries")
    def resend(self, request, queryset):
        resent = webhooks.resend(queryset)
        if sending := resent.queued - resent.waiting:
            self.message_user(
                request, f"{sending} deliveries queued again: they are sent within a few seconds."
            )
        if resent.waiting:
            self.message_user(
                request,
                f"{resent.waiting} deliveries queued again for an endpoint that is switched "
                "off: they are sent once it is active again.",
                messages.WARNING,
            )
        if resent.withdrawn:
            self.message_user(
                request,
                f"{resent.withdrawn} deliveries not resent: what they reported is gone (an "
                "expiry reminder dropped by a merge or an erasure), or their member was "
                "erased.",
                messages.WARNING,
            )
