"""The CX Manager's queue of point requests: adjustments above a goodwill limit
(points.services.goodwill), for CX supervisors (points.approve_adjustment) to approve
or reject with a reason. Bounded queries whatever the number of requests."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from core.words import counted
from members.models import Member
from points.models import AdjustmentRequest
from points.services.goodwill import (
    APPROVE,
    above_approvers_limit,
    approve_request,
    approvers_limit,
    reject_request,
)

QUEUE_ROWS = 100
DECIDED_ROWS = 20
Status = AdjustmentRequest.Status


class DecisionForm(forms.Form):
    request = forms.IntegerField(widget=forms.HiddenInput)
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    reason = forms.CharField(required=False)  # its length: the service says (255)


def approvals_view(site, request):
    """GET: the pending requests, oldest first, and the latest decisions. POST: one
    decision, then the queue again with what happened."""
    if not request.user.has_perm(APPROVE):
        raise PermissionDenied
    if request.method == "POST":
        return _decide(site, request)
    related = ("member", "definition", "requested_by", "decided_by")
    pending = AdjustmentRequest.objects.filter(status=Status.PENDING).select_related(*related)
    shown = list(pending.order_by("requested_at", "pk")[: QUEUE_ROWS + 1])
    limit = approvers_limit(request.user)
    for made in shown:  # said beside the request, instead of its Approve button
        made.beyond_me = above_approvers_limit(made.points, limit)
    context = {
        **site.each_context(request),
        "title": "Point requests to approve",
        "pending": shown[:QUEUE_ROWS],
        "more": len(shown) > QUEUE_ROWS,
        "decided": AdjustmentRequest.objects.exclude(status=Status.PENDING)
        .select_related(*related)
        .order_by("-decided_at", "-pk")[:DECIDED_ROWS],
    }
    return TemplateResponse(request, "admin/points/approvals.html", context)


def waiting() -> int:
    """Pending requests, counted up to QUEUE_ROWS + 1 (the dashboard's link)."""
    return AdjustmentRequest.objects.filter(status=Status.PENDING)[: QUEUE_ROWS + 1].count()


def _decide(site, request):
    form = DecisionForm(request.POST)
    if not form.is_valid() and "reason" in form.errors:  # the reason named, not the request
        messages.error(request, f"Reason: {' '.join(form.errors['reason'])}")
        return redirect("admin:approvals")
    made = (
        form.is_valid()
        and AdjustmentRequest.objects.filter(pk=form.cleaned_data["request"])
        .select_related("member", "requested_by", "definition")
        .first()
    )
    if not made:
        messages.error(request, "Choose a request and approve or reject it.")
        return redirect("admin:approvals")
    approve = form.cleaned_data["decision"] == "approve"
    service = approve_request if approve else reject_request
    verb = "Approved" if approve else "Rejected"
    try:
        with transaction.atomic():  # the decision and its line in the member's history
            made = service(request=made, by=request.user, reason=form.cleaned_data["reason"])
            why = made.decision_reason or "no reason given"
            points = counted(made.points, "point", signed=True)
            decision = f"{verb} the request of {made.requested_by} for {points}: {why}"
            site.get_model_admin(Member).log_change(request, made.member, decision)
    except ValidationError as exc:
        asked = f"{counted(made.points, 'point', signed=True)} asked by {made.requested_by}"
        messages.error(request, f"{made.member.external_id}, {asked}: {' '.join(exc.messages)}")
    else:
        given = f" {made.member.external_id} was given them." if approve else ""
        messages.success(
            request,
            f"{verb}: {points} for {made.member.external_id} asked by {made.requested_by}.{given}",
        )
    return redirect("admin:approvals")
