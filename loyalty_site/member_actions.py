"""What a CX agent does on the member page: assign points (P6), redeem a reward (W3)
and cancel a redemption (W4), each once per form, the last two after a confirmation
page that shows what will happen."""

import copy
import uuid

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from core.staff_input import is_blank
from core.words import counted
from loyalty_site.models import FormSubmission
from members.models import Member
from members.selectors import check_open
from points.models import MANUAL_ADJUSTMENT, AdjustmentRequest, PointDefinition
from points.selectors import balances, points_summary, programme, tier_news
from points.services import NOT_GIVEN_BY_HAND
from points.services.goodwill import adjust_or_request, who_approves
from rewards.models import Redemption, Reward
from rewards.selectors import locked_because
from rewards.services import (
    CANCEL_REASON_LENGTH,
    VoucherTerms,
    cancel_redemption,
    check_redeems,
    redeem,
    why_not_cancellable,
)

CONFIRM = "_confirm"


# Under each reason staff type that the ledger or the history keeps for good: an audit
# found names, phone numbers and health in them, which erasing the customer cannot take
# out of an append-only ledger (P7).
KEPT_REASON_HELP = (
    "Kept for good, even if the customer is later erased: write what happened, not "
    "names, contact details or health."
)


class OnceForm(forms.Form):
    """A staff form that changes points: it carries a one-time token (see `apply_once`)."""

    token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("token", uuid.uuid4())
        super().__init__(*args, **kwargs)
        # An id of its own: the member page holds several of these forms.
        owner = self.prefix or type(self).__name__.removesuffix("Form").lower()
        self.fields["token"].widget.attrs["id"] = f"{owner}-token"


class DefinitionChoice(forms.ModelChoiceField):
    def label_from_instance(self, definition):
        if definition.kind == PointDefinition.Kind.ACTION:
            return f"{definition.name} ({definition.points:,} points)"
        return definition.name


class AssignPointsForm(OnceForm):
    points = forms.IntegerField(help_text="Negative to remove points.")
    definition = DefinitionChoice(
        queryset=PointDefinition.objects.filter(
            is_active=True, kind__in=[PointDefinition.Kind.BONUS, PointDefinition.Kind.ACTION]
        ).exclude(handle__in=NOT_GIVEN_BY_HAND),
        empty_label=None,
        help_text="Decides whether the points count toward the tier. An action gives "
        "exactly its points.",
    )
    reason = forms.CharField(
        max_length=255,
        error_messages={"required": "Say why the points are adjusted."},
        help_text=KEPT_REASON_HELP,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        manual = self.fields["definition"].queryset.filter(handle=MANUAL_ADJUSTMENT).first()
        self.fields["definition"].initial = manual


class RedeemForm(OnceForm):
    reward = forms.IntegerField(widget=forms.HiddenInput)
    # The cost the confirmation page showed (absent on the member page's first step,
    # required to confirm).
    cost = forms.IntegerField(widget=forms.HiddenInput, required=False)
    # The voucher it showed (W5): its value (empty for none) and days.
    value = forms.DecimalField(widget=forms.HiddenInput, required=False, decimal_places=2)
    valid_days = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def shown_terms(self) -> VoucherTerms | None:
        """The voucher the confirmation showed; None from a form that did not say."""
        days = self.cleaned_data["valid_days"]
        return None if days is None else VoucherTerms(self.cleaned_data["value"], days)


class ReasonField(forms.CharField):
    """A reason staff give: required, and invisible characters alone are none (P6),
    said on the field before anything is asked or done."""

    def clean(self, value):
        value = super().clean(value)
        if is_blank(value):
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return value


class CancelRedemptionForm(OnceForm):
    reason = ReasonField(
        max_length=CANCEL_REASON_LENGTH,
        label="Why",
        error_messages={"required": "Say why the redemption is cancelled."},
        widget=forms.TextInput(attrs={"size": 60}),
    )


# What a form sent again says (apply_once returned False).
ALREADY_SENT = "This form was already sent: nothing was applied twice."


def apply_once(token: uuid.UUID, change) -> bool:
    """Run `change()` unless a form with this token was already applied; False then.

    The token is written in the change's own transaction: if the change fails, the
    token goes with it and the agent can correct the form and send it again. Two
    posts at once: the second waits on the first's insert and then finds the token."""
    with transaction.atomic():
        if not FormSubmission.first(token):
            return False
        change()
    return True


def with_its_history(view):
    """The view in one database transaction: the change it makes and its line in the
    member's history (log_change) commit together. Apart, a failure between them (the
    connection lost, the worker killed) left a change no history names, and an agent
    who saw an error sent a new form: the points given twice."""
    return transaction.atomic(view)


class MemberActions:
    """The member admin's action views: each checks its permission, calls a service,
    and goes back to the member page with what changed."""

    def action_urls(self):
        form_view = self.member_form_view
        return [
            path(
                "<path:object_id>/assign-points/",
                form_view(self.assign_points_view),
                name="members_member_assign_points",
            ),
            path(
                "<path:object_id>/redeem/",
                form_view(self.redeem_view),
                name="members_member_redeem",
            ),
            path(
                "<path:object_id>/redemptions/<int:redemption_id>/cancel/",
                self.admin_site.admin_view(with_its_history(self.cancel_redemption_view)),
                name="members_member_cancel_redemption",
            ),
        ]

    def member_form_view(self, view):
        """The admin view of a form of the member page, which answers its POST. A form
        sent with a mistake, or its confirmation, is shown at the view's address: opened
        again from there (the address bar, a bookmark) it is the member page, where the
        form is, and nothing is done; never "not for your role" to whoever may use it."""

        def form_view(request, object_id, *args, **kwargs):
            if request.method == "GET":
                return redirect("admin:members_member_change", object_id)
            return view(request, object_id, *args, **kwargs)

        return self.admin_site.admin_view(with_its_history(form_view))

    def assign_points_view(self, request, object_id):
        """P6 from the member page: `adjust_points`, once per form, then back to the page."""
        member = self._member_for(request, object_id, "points.assign_points")
        form = AssignPointsForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            made = []
            try:
                applied = apply_once(
                    data["token"],
                    lambda: made.append(
                        adjust_or_request(
                            member=member,
                            points=data["points"],
                            reason=data["reason"],
                            by=request.user,
                            definition=data["definition"],
                        )
                    ),
                )
            except ValidationError as exc:
                form.add_error(None, exc)  # on the field it names, or above the form
            else:
                if made and isinstance(made[0], AdjustmentRequest):
                    return self._requested(request, member, made[0])
                message = (
                    f"Assigned {counted(data['points'], 'point', signed=True)}: {data['reason']}"
                )
                if made and (news := tier_news(made[0])):
                    message = f"{message}. {news}"
                return self._done(request, member, applied, message)
        # The page again, with the agent's input and what is wrong with it.
        return self.change_view(as_get(request), object_id, extra_context={"assign_form": form})

    def redeem_view(self, request, object_id):
        """W3 from the member page: a confirmation page with the balance after, then
        `redeem`, once per form, and back to the page."""
        member = self._member_for(request, object_id, "rewards.add_redemption")
        form = RedeemForm(request.POST)
        reward = form.is_valid() and Reward.objects.filter(pk=form.cleaned_data["reward"]).first()
        if not reward:
            self.message_user(request, "Choose a reward to redeem.", messages.ERROR)
            return redirect("admin:members_member_change", member.pk)
        if CONFIRM not in request.POST:
            try:  # a page opened before the account was merged (or erased): say so
                check_open(member)
                check_redeems(member)
            except ValidationError as closed:
                self.message_user(request, " ".join(closed.messages), messages.ERROR)
                return redirect("admin:members_member_change", member.pk)
            available, pending = balances(member)
            why = locked_because(  # say it now, not after confirming
                reward,
                effective_tier_id=member.effective_tier_id,
                available=available,
                pending=pending,
                ranking=programme().ranking,
                now=timezone.now(),
            )
            if why:
                self.message_user(request, f"{reward.name}: {why}.", messages.ERROR)
                return redirect("admin:members_member_change", member.pk)
            return self._confirmation(
                request,
                member,
                "Redeem this reward?",
                form,
                reward=reward,
                available=available,
                after=available - reward.points_cost,
            )
        # never spend a cost, nor give a voucher, the agent did not read out
        if form.cleaned_data["cost"] is None or form.shown_terms() is None:
            self.message_user(
                request,
                "Choose the reward again: the confirmation did not say its cost and voucher.",
                messages.ERROR,
            )
            return redirect("admin:members_member_change", member.pk)
        made = []
        try:
            applied = apply_once(
                form.cleaned_data["token"],
                lambda: made.append(
                    redeem(
                        member=member,
                        reward=reward,
                        by=request.user,
                        cost=form.cleaned_data["cost"],
                        terms=form.shown_terms(),
                    )
                ),
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return redirect("admin:members_member_change", member.pk)
        message = logged = f"Redeemed {reward.name}"
        if made:  # W5: the agent reads the code to the customer
            code, until = made[0].shown_code, made[0].valid_until
            message += f": voucher {code}, valid until {until:%-d %b %Y}"
            # The history is read by all who may view members (Operations too), and a
            # code is money at a till: it names the redemption, whose page has the code.
            logged += f" (redemption {made[0].pk})"
        return self._done(request, member, applied, message, logged=logged)

    def cancel_redemption_view(self, request, object_id, redemption_id):
        """W4 from the member page: a page that shows the refund and asks why, then
        `cancel_redemption`, once per form."""
        # GET (the link on the member page) asks; POST (the page's form) cancels.
        member = self._member_for(request, object_id, "rewards.cancel_redemption", get=True)
        redemption = (
            Redemption.objects.filter(pk=redemption_id, member=member)
            .select_related("member__merged_into")
            .first()
        )
        if redemption is None:
            raise Http404("No such redemption of this member.")
        form = CancelRedemptionForm(request.POST if request.method == "POST" else None)
        if not form.is_valid():
            # Used or cancelled since the member page was read: said, not a refund promised.
            refused = why_not_cancellable(redemption)
            return self._confirmation(
                request,
                member,
                "Cancel this redemption?",
                form,
                redemption=redemption,
                refused=refused,
            )
        try:
            applied = apply_once(
                form.cleaned_data["token"],
                lambda: cancel_redemption(
                    redemption=redemption, by=request.user, reason=form.cleaned_data["reason"]
                ),
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return redirect("admin:members_member_change", member.pk)
        message = f"Cancelled the redemption of {redemption.reward_name} and refunded "
        message += f"{redemption.points:,} points: {form.cleaned_data['reason']}"
        # A merged account's refund went to the member it was merged into (M5).
        return self._done(request, redemption.holder, applied, message, page=member)

    def _confirmation(self, request, member, title, form, **context):
        return TemplateResponse(
            request,
            "admin/members/member/action_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.opts,
                "member": member,
                "form": form,
                "confirm": CONFIRM,
                "action_url": request.path,
                **context,
            },
        )

    def _member_for(self, request, object_id, permission, *, get=False) -> Member:
        """The member of a POST (or of a GET that only asks) by a user with `permission`."""
        if request.method not in (("GET", "POST") if get else ("POST",)):
            raise PermissionDenied
        if not request.user.has_perm(permission):
            raise PermissionDenied
        member = self.get_object(request, object_id)
        if member is None:
            raise Http404("No such member.")
        return member

    def _requested(self, request, member, made: AdjustmentRequest):
        """Above the agent's goodwill limit: sent for approval, nothing given yet."""
        points = counted(made.points, "point", signed=True)
        message = (
            f"Sent for approval: {points} is {made.above}. {who_approves(made)}; nothing is "
            "given until then"
        )
        self.log_change(request, member, f"{message}: {made.reason}")
        self.message_user(request, f"{message}.", messages.WARNING)
        return redirect("admin:members_member_change", member.pk)

    def _done(self, request, member, applied: bool, message: str, *, page=None, logged=None):
        """Log the change (`logged`, by default the message) to the staff user on the
        member whose points it moved, say so with their new balance, and go back to the
        member page (`page`, by default that member's; a refresh there re-sends
        nothing)."""
        if applied:
            self.log_change(request, member, logged or message)
            available = points_summary(member)["available"]
            self.message_user(
                request,
                f"{message}. {member.external_id} now has {available:,} points available.",
                messages.SUCCESS,
            )
        else:
            self.message_user(request, ALREADY_SENT, messages.WARNING)
        return redirect("admin:members_member_change", (page or member).pk)


def as_get(request):
    """The same request as a GET, to show a page again after a failed POST."""
    again = copy.copy(request)
    again.method = "GET"
    return again
