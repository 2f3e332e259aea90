"""The CX Manager's member page: everything an agent needs while the customer waits,
and the two things an agent does there, assigning points and redeeming a reward."""

import copy
import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from import_export.admin import ExportMixin
from import_export.formats import base_formats

from core.paginator import CappedPaginator
from loyalty_site.models import FormSubmission
from members.models import Member
from members.resources import MemberResource
from members.services import enroll_member, erase_member
from points.models import MANUAL_ADJUSTMENT, TIER_UP_BONUS, LedgerEntry, PointDefinition
from points.selectors import balances, points_summary
from points.services import adjust_points
from rewards.models import Redemption, Reward
from rewards.selectors import catalogue
from rewards.services import redeem
from tiers.models import DegradationPolicy
from tiers.selectors import Ranking, next_degradation

LEDGER_PAGE_SIZE = 25
HISTORY_ROWS = 20


class OnceForm(forms.Form):
    """A staff form that changes points: it carries a one-time token (see `apply_once`)."""

    token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("token", uuid.uuid4())
        super().__init__(*args, **kwargs)


class AssignPointsForm(OnceForm):
    points = forms.IntegerField(help_text="Negative to remove points.")
    definition = forms.ModelChoiceField(
        queryset=PointDefinition.objects.filter(
            is_active=True, kind__in=[PointDefinition.Kind.BONUS, PointDefinition.Kind.ACTION]
        ).exclude(handle=TIER_UP_BONUS),
        empty_label=None,
        help_text="Decides whether the points count toward the tier.",
    )
    reason = forms.CharField(
        max_length=255, error_messages={"required": "Say why the points are adjusted."}
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        manual = self.fields["definition"].queryset.filter(handle=MANUAL_ADJUSTMENT).first()
        self.fields["definition"].initial = manual


class RedeemForm(OnceForm):
    reward = forms.IntegerField(widget=forms.HiddenInput)


def apply_once(token: uuid.UUID, change) -> bool:
    """Run `change()` unless a form with this token was already applied; False then.

    The token is written in the change's own transaction: if the change fails, the
    token goes with it and the agent can correct the form and send it again. Two
    posts at once: the second waits on the first's insert and then finds the token."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                FormSubmission.objects.create(token=token)
        except IntegrityError:
            return False
        change()
    return True


def member_context(request, member, *, assign_form=None, now=None) -> dict:
    """The member page's panels, a fixed number of queries whatever the member's
    history: balances, tiers and progress, degradation, catalogue, history, ledger."""
    now = now or timezone.now()
    ranking = Ranking()
    available, pending = balances(member, now=now)
    qualified = ranking.by_pk[member.qualified_tier_id]
    effective = ranking.by_pk[member.effective_tier_id]
    next_tier = ranking.next_above(qualified.pk)
    progress = None
    if next_tier:
        span = next_tier.threshold - qualified.threshold
        progress = {
            "tier": next_tier,
            "to_go": next_tier.threshold - member.lifetime_points,
            "percent": round(100 * (member.lifetime_points - qualified.threshold) / span, 1),
        }
    policy = DegradationPolicy.current()
    ledger = LedgerEntry.objects.filter(member=member).select_related("definition", "created_by")
    user = request.user
    return {
        "member": member,
        "available": available,
        "pending": pending,
        "qualified": qualified,
        "effective": effective,
        "progress": progress,
        "degradation_enabled": policy.enabled,
        "next_degradation": next_degradation(member, policy, ranking, now),
        "catalogue": catalogue(member, now=now),
        "tier_history": member.tier_changes.select_related(
            "from_tier", "to_tier", "qualified_tier", "created_by"
        )[:HISTORY_ROWS],
        "ledger_page": Paginator(ledger, LEDGER_PAGE_SIZE).get_page(request.GET.get("ledger")),
        "redemptions": Redemption.objects.filter(member=member).select_related(
            "reward", "redeemed_by"
        )[:HISTORY_ROWS],
        "assign_form": (assign_form or AssignPointsForm())
        if user.has_perm("points.assign_points")
        else None,
        "redeem_form": RedeemForm() if user.has_perm("rewards.add_redemption") else None,
    }


class MemberAdmin(ExportMixin, admin.ModelAdmin):
    """The member page of the CX Manager: search, balances, tiers, history, ledger,
    catalogue, and the agent's two actions (assign points, redeem a reward)."""

    resource_classes = [MemberResource]
    formats = [base_formats.CSV]
    change_form_template = "admin/members/member/change_form.html"
    list_display = [
        "external_id",
        "first_name",
        "last_name",
        "email",
        "qualified_tier",
        "effective_tier",
        "points_balance",
        "lifetime_points",
    ]
    list_select_related = ["qualified_tier", "effective_tier"]
    list_filter = ["effective_tier"]
    # Exact or prefix, case-insensitive: indexed on PostgreSQL (members migration 0004).
    search_fields = [
        "external_id__istartswith",
        "email__istartswith",
        "first_name__istartswith",
        "last_name__istartswith",
    ]
    search_help_text = "Customer code, e-mail, first or last name: the whole or its start."
    sortable_by = ["external_id", "lifetime_points"]
    ordering = ["-pk"]
    show_full_result_count = False
    paginator = CappedPaginator
    fields = ["external_id", "first_name", "last_name", "email", "phone", "joined_at"]
    actions = ["erase"]

    @admin.action(permissions=["erase"], description="Erase personal data of the selected members")
    def erase(self, request, queryset):
        """Right to be forgotten, after a confirmation page that says it is final."""
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Erase personal data?",
                "opts": self.opts,
                "members": queryset,
                "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/members/member/erase_confirmation.html", context
            )
        for member in queryset:
            try:
                erased = erase_member(member=member, by=request.user)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                self.log_change(request, erased, "Personal data erased")
                self.message_user(request, f"Personal data erased: now {erased.external_id}.")

    def has_erase_permission(self, request):
        return request.user.has_perm("members.erase_member")

    def has_export_permission(self, request):
        # E-mails and phones of every member: not for every role that may look one up.
        return request.user.has_perm("members.export_member")

    def get_readonly_fields(self, request, obj=None):
        # The customer code is the key other systems use: fixed once enrolled.
        return ["external_id"] if obj else []

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        actions = [
            path(
                "<path:object_id>/assign-points/",
                self.admin_site.admin_view(self.assign_points_view),
                name="members_member_assign_points",
            ),
            path(
                "<path:object_id>/redeem/",
                self.admin_site.admin_view(self.redeem_view),
                name="members_member_redeem",
            ),
        ]
        return actions + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = dict(extra_context or {})
        member = self.get_object(request, object_id)
        if member is not None:
            assign_form = context.pop("assign_form", None)
            context.update(member_context(request, member, assign_form=assign_form))
            context.setdefault("title", str(member))
            context.setdefault("subtitle", None)
            context.setdefault("show_save_and_add_another", False)
        return super().change_view(request, object_id, form_url, context)

    def assign_points_view(self, request, object_id):
        """P6 from the member page: `adjust_points`, once per form, then back to the page."""
        member = self._member_for(request, object_id, "points.assign_points")
        form = AssignPointsForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                applied = apply_once(
                    data["token"],
                    lambda: adjust_points(
                        member=member,
                        points=data["points"],
                        reason=data["reason"],
                        by=request.user,
                        definition=data["definition"],
                    ),
                )
            except ValidationError as exc:
                form.add_error(None, exc)  # on the field it names, or above the form
            else:
                message = f"Assigned {data['points']:+,} points: {data['reason']}"
                return self._done(request, member, applied, message)
        # The page again, with the agent's input and what is wrong with it.
        return self.change_view(_as_get(request), object_id, extra_context={"assign_form": form})

    def redeem_view(self, request, object_id):
        """W3 from the member page: `redeem`, once per form, then back to the page."""
        member = self._member_for(request, object_id, "rewards.add_redemption")
        form = RedeemForm(request.POST)
        reward = form.is_valid() and Reward.objects.filter(pk=form.cleaned_data["reward"]).first()
        if not reward:
            self.message_user(request, "Choose a reward to redeem.", messages.ERROR)
            return redirect("admin:members_member_change", member.pk)
        try:
            applied = apply_once(
                form.cleaned_data["token"],
                lambda: redeem(member=member, reward=reward, by=request.user),
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return redirect("admin:members_member_change", member.pk)
        return self._done(request, member, applied, f"Redeemed {reward.name}")

    def _member_for(self, request, object_id, permission) -> Member:
        if request.method != "POST" or not request.user.has_perm(permission):
            raise PermissionDenied
        member = self.get_object(request, object_id)
        if member is None:
            raise Http404("No such member.")
        return member

    def _done(self, request, member, applied: bool, message: str):
        """Log the change to the staff user, say so with the new balance, and go back
        to the member page (a refresh there re-sends nothing)."""
        if applied:
            self.log_change(request, member, message)
            available = points_summary(member)["available"]
            self.message_user(
                request,
                f"{message}. {member.external_id} now has {available:,} points available.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request, "This form was already sent: nothing was applied twice.", messages.WARNING
            )
        return redirect("admin:members_member_change", member.pk)

    def save_model(self, request, obj, form, change):
        """A new member is enrolled through the service (entry tier, history); the form
        has already checked the fields, the customer code's uniqueness included."""
        if change:
            return super().save_model(request, obj, form, change)
        member = enroll_member(
            external_id=obj.external_id,
            email=obj.email,
            first_name=obj.first_name,
            last_name=obj.last_name,
            joined_at=obj.joined_at,
        )
        obj.pk, obj._state.adding = member.pk, False


def _as_get(request):
    """The same request as a GET, to show a page again after a failed POST."""
    again = copy.copy(request)
    again.method = "GET"
    return again
