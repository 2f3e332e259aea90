"""Merging a customer's duplicate account into the member on the page (DESIGN.md,
"Member 360", Merge): the agent names the duplicate's customer code and says why; a
confirmation page shows both members and the result, with nothing written yet;
confirming merges, once per form (members.merge_member)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from core.admin import IdField
from loyalty_site.member_actions import (
    ALREADY_SENT,
    CONFIRM,
    KEPT_REASON_HELP,
    OnceForm,
    ReasonField,
    apply_once,
    as_get,
)
from members.models import Member
from members.services import merge_members
from points.selectors import points_summary
from points.services import merge_preview
from rewards.models import Redemption

PERMISSION = "members.merge_member"


class MergeForm(OnceForm):
    duplicate = IdField(
        label="Duplicate",
        max_length=Member._meta.get_field("external_id").max_length,
        help_text="Customer code of the account the customer no longer uses: it is closed "
        "and its points come here.",
        error_messages={"required": "Give the customer code of the duplicate account."},
    )
    reason = ReasonField(
        max_length=255,
        error_messages={"required": "Say why the accounts are merged."},
        help_text=f"E.g. new e-mail address; card lost and re-issued. {KEPT_REASON_HELP}",
    )

    def __init__(self, *args, **kwargs):
        # Beside the assign form on the member page: its own field names and ids.
        kwargs.setdefault("prefix", "merge")
        super().__init__(*args, **kwargs)


class MemberMerge:
    """The member admin's merge view: form on the member page, confirmation, merge."""

    def merge_urls(self):
        return [
            path(
                "<path:object_id>/merge/",
                self.member_form_view(self.merge_view),  # MemberActions
                name="members_member_merge",
            )
        ]

    def merge_view(self, request, object_id):
        survivor = self._member_for(request, object_id, PERMISSION)
        form = MergeForm(request.POST)
        duplicate = None
        if form.is_valid():
            code = form.cleaned_data["duplicate"]
            # Exactly this code: a merged code names its survivor elsewhere, not here.
            # Typed in other letters' case ("m-01984"), the one code it can only mean.
            duplicate = Member.objects.filter(external_id=code).first()
            if duplicate is None:
                alike = list(Member.objects.filter(external_id__iexact=code)[:2])
                duplicate = alike[0] if len(alike) == 1 else None
            if duplicate is None:
                form.add_error("duplicate", f"No member has the customer code {code!r}.")
        if duplicate is None:
            return self._merge_form_again(request, object_id, form)
        if CONFIRM not in request.POST:
            try:
                preview = merge_preview(survivor=survivor, duplicate=duplicate)
            except ValidationError as exc:
                form.add_error(None, exc)
                return self._merge_form_again(request, object_id, form)
            return self._merge_confirmation(request, survivor, duplicate, form, preview)
        reason = form.cleaned_data["reason"]
        try:
            applied = apply_once(
                form.cleaned_data["token"],
                lambda: merge_members(
                    survivor=survivor, duplicate=duplicate, by=request.user, reason=reason
                ),
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return redirect("admin:members_member_change", survivor.pk)
        if applied:
            available = points_summary(survivor)["available"]
            self.message_user(
                request,
                f"Merged {duplicate.external_id} into {survivor.external_id}: {reason}. "
                f"{survivor.external_id} now has {available:,} points available; "
                f"{duplicate.external_id} is closed.",
                messages.SUCCESS,
            )
        else:
            self.message_user(request, ALREADY_SENT, messages.WARNING)
        return redirect("admin:members_member_change", survivor.pk)

    def _merge_form_again(self, request, object_id, form):
        """The member page again, with the agent's input and what is wrong with it."""
        return self.change_view(as_get(request), object_id, extra_context={"merge_form": form})

    def _merge_confirmation(self, request, survivor, duplicate, form, preview):
        # Those a cancellation could still refund: not cancelled, not used (W4).
        open_redemptions = Redemption.objects.filter(
            member=duplicate, status=Redemption.Status.REDEEMED, used_at=None
        ).count()
        return TemplateResponse(
            request,
            "admin/members/member/merge_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Merge {duplicate.external_id} into {survivor.external_id}?",
                "opts": self.opts,
                "member": survivor,
                "duplicate": duplicate,
                "form": form,
                "confirm": CONFIRM,
                "action_url": request.path,
                "preview": preview,
                "open_redemptions": open_redemptions,
            },
        )
