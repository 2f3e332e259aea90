"""API keys in the CX Manager, for superusers only: a key is a way into every member's
points. Created through the service and shown once; revoked, never deleted."""

from django.contrib import admin, messages
from django.utils.html import format_html
from rest_framework_api_key.models import APIKey

from api.models import ApiKey
from api.services import create_api_key, revoke_api_key

# The library registers an admin of its own model, which the API does not use.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "channel", "store", "created", "expiry_date", "state", "used"]
    search_fields = ["name", "=prefix"]
    show_full_result_count = False
    actions = ["revoke"]

    # Superusers only, in every view and action.

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the ledger and history name the key

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
            obj.save()
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
        revoked = 0
        for key in queryset:
            if revoke_api_key(key=key):
                self.log_change(request, key, "Revoked")
                revoked += 1
        self.message_user(request, f"{revoked} key(s) revoked: they answer 401 from now on.")
