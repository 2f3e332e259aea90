"""Governance on the member page: a status match (tiers.grant_status), a freeze of
degradation and expiry (members.freeze_member), and the point requests sent for
approval above a goodwill limit (points.services.goodwill), each form applied once."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import F, Q
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone

from loyalty_site.member_actions import (
    ALREADY_SENT,
    KEPT_REASON_HELP,
    OnceForm,
    apply_once,
    as_get,
)
from members.services import freeze_noted
from points.models import AdjustmentRequest
from points.services.freezing import freeze_member, unfreeze_member
from tiers.models import StatusGrant, Tier
from tiers.selectors import frozen_last_day
from tiers.services import end_status_match, grant_status

GRANT, FREEZE = "tiers.grant_status", "members.freeze_member"
REQUESTS_SHOWN = 10
OUT_OF_DATE = "This page is out of date: nothing was changed. Open the member page again."


class UntilForm(OnceForm):
    """A last day and why, under its own prefix beside the page's other forms."""

    prefix_name = ""
    until = forms.DateField(
        label="Until",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"required": "Give the last day."},
    )
    reason = forms.CharField(max_length=255, error_messages={"required": "Say why."})

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", self.prefix_name)
        super().__init__(*args, **kwargs)


class StatusMatchForm(UntilForm):
    prefix_name = "match"
    field_order = ["tier", "until", "reason"]
    tier = forms.ModelChoiceField(queryset=Tier.objects.order_by("threshold"))

    def __init__(self, *args, member=None, **kwargs):
        super().__init__(*args, **kwargs)
        if member is not None:
            self.offer_for(member)
        self.fields["until"].help_text = "The last day the tier is granted; then the rules apply."
        example = "E.g. Gold card of a competitor, seen by the agent."
        self.fields["reason"].help_text = f"{example} {KEPT_REASON_HELP}"

    def offer_for(self, member) -> None:
        """Offer the tiers a match can grant: above the member's qualified tier."""
        above = Q(threshold__gt=member.qualified_tier.threshold)
        self.fields["tier"].queryset = Tier.objects.order_by("threshold").filter(above)


class EndMatchForm(OnceForm):
    prefix = "end_match"  # beside the page's other reasons
    reason = forms.CharField(
        max_length=255,
        label="Why",
        error_messages={"required": "Say why the status match ends early."},
        widget=forms.TextInput(
            attrs={"size": 40, "placeholder": "e.g. granted to the wrong member"}
        ),
    )


class FreezeForm(UntilForm):
    prefix_name = "freeze"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields[
            "until"
        ].help_text = "The last frozen day: no degradation, no expiry until then."
        self.fields["reason"].help_text = "E.g. illness, relocation, a service failure."


class EndFreezeForm(OnceForm):
    """Ends the freeze the page showed (its end, to the microsecond): not one a colleague
    set since."""

    prefix = "end_freeze"
    seen_until = forms.DateTimeField(widget=forms.HiddenInput)


def governance_context(user, member, *, now, match_form=None, freeze_form=None) -> dict:
    """The member page's status match, freeze and requests: three small queries."""
    open_member = not member.is_merged
    # Nothing new about a customer who asked to be forgotten (check_not_erased).
    recordable = open_member and not member.erased_at
    grant = None
    if member.granted_tier_id:
        grant = (
            StatusGrant.objects.filter(member=member, ended_at=None)
            .select_related("tier", "granted_by")
            .first()
        )
    requests = None
    if user.has_perm("points.view_adjustmentrequest") or user.has_perm("points.assign_points"):
        # Those still waiting first, however old, then the latest decided.
        first = (F("decided_at").desc(nulls_first=True), "-requested_at", "-pk")
        requests = (
            AdjustmentRequest.objects.filter(member=member)
            .select_related("requested_by", "decided_by", "definition")
            .order_by(*first)[:REQUESTS_SHOWN]
        )
    return {
        "status_match": grant,
        "frozen_through": frozen_last_day(member) if member.frozen_at(now) else None,
        "adjustment_requests": requests,
        "end_match_form": EndMatchForm() if grant and user.has_perm(GRANT) else None,
        "match_form": (match_form or StatusMatchForm(member=member))
        if recordable and user.has_perm(GRANT)
        else None,
        "freeze_form": (freeze_form or FreezeForm())
        if recordable and user.has_perm(FREEZE)
        else None,
        "end_freeze_form": EndFreezeForm(initial={"seen_until": member.frozen_until.isoformat()})
        if open_member and user.has_perm(FREEZE) and member.frozen_at(now)
        else None,
    }


class MemberGovernance:
    """The member admin's views for a status match and a freeze."""

    def governance_urls(self):
        view = self.member_form_view  # MemberActions
        return [
            path(
                "<path:object_id>/status-match/",
                view(self.status_match_view),
                name="members_member_status_match",
            ),
            path(
                "<path:object_id>/status-match/end/",
                view(self.end_status_match_view),
                name="members_member_end_status_match",
            ),
            path("<path:object_id>/freeze/", view(self.freeze_view), name="members_member_freeze"),
            path(
                "<path:object_id>/unfreeze/",
                view(self.unfreeze_view),
                name="members_member_unfreeze",
            ),
        ]

    def status_match_view(self, request, object_id):
        member = self._member_for(request, object_id, GRANT)
        form = StatusMatchForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                applied = apply_once(
                    data["token"],
                    lambda: grant_status(
                        member=member,
                        tier=data["tier"],
                        until=data["until"],
                        reason=data["reason"],
                        by=request.user,
                    ),
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                message = (
                    f"{data['tier'].name} by status match until {data['until']:%-d %b %Y}: "
                    f"{data['reason']}"
                )
                return self._governed(request, member, applied, message)
        # Checked against every tier (the service says why one is refused); shown again
        # offering what the page offered.
        form.offer_for(member)
        return self._again(request, member, object_id, "match_form", form)

    def end_status_match_view(self, request, object_id):
        member = self._member_for(request, object_id, GRANT)
        form = EndMatchForm(request.POST)
        try:
            if not form.is_valid():
                raise ValidationError([e for errors in form.errors.values() for e in errors])
            ended = []
            applied = apply_once(
                form.cleaned_data["token"],
                lambda: ended.append(
                    end_status_match(
                        member=member, reason=form.cleaned_data["reason"], by=request.user
                    )
                ),
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return redirect("admin:members_member_change", member.pk)
        grant = ended[0] if ended else None
        what = f"{grant.tier.name} status match" if grant else "Status match"
        return self._governed(
            request, member, applied, f"{what} ended early: {form.cleaned_data['reason']}"
        )

    def freeze_view(self, request, object_id):
        member = self._member_for(request, object_id, FREEZE)
        form = FreezeForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                applied = apply_once(
                    data["token"],
                    lambda: freeze_member(
                        member=member, until=data["until"], reason=data["reason"], by=request.user
                    ),
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                message = freeze_noted(data["until"], data["reason"])
                return self._governed(request, member, applied, message)
        return self._again(request, member, object_id, "freeze_form", form)

    def _again(self, request, member, object_id, name, form):
        """The member page again with the form and what is wrong with it; for a closed
        or erased account, which the page offers no such form (a page opened before a
        merge or an erasure sent it), what is wrong above the page."""
        if member.is_merged or member.erased_at:
            errors = [error for errors in form.errors.values() for error in errors]
            self.message_user(request, " ".join(errors), messages.ERROR)
            return redirect("admin:members_member_change", member.pk)
        return self.change_view(as_get(request), object_id, extra_context={name: form})

    def unfreeze_view(self, request, object_id):
        member = self._member_for(request, object_id, FREEZE)
        form = EndFreezeForm(request.POST)
        if not form.is_valid():  # a page from before this form, or one tampered with
            self.message_user(request, OUT_OF_DATE, messages.ERROR)
            return redirect("admin:members_member_change", member.pk)
        seen = form.cleaned_data["seen_until"]
        try:
            applied = apply_once(
                form.cleaned_data["token"],
                lambda: unfreeze_member(member=member, by=request.user, seen_until=seen),
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return redirect("admin:members_member_change", member.pk)
        stamp = timezone.localtime()
        return self._governed(request, member, applied, f"Freeze ended on {stamp:%-d %b %Y %H:%M}")

    def _governed(self, request, member, applied: bool, message: str):
        if applied:
            self.log_change(request, member, message)
            self.message_user(request, f"{message}.", messages.SUCCESS)
        else:
            self.message_user(request, ALREADY_SENT, messages.WARNING)
        return redirect("admin:members_member_change", member.pk)
