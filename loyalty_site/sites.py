import operator
from functools import reduce

from django import forms
from django.contrib import admin
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.cache import cache
from django.utils import timezone

from core.paginator import CappedPaginator
from members.models import Member
from points.models import ExpiryPolicy, LedgerEntry
from points.selectors import expiry_preview, next_cutoff
from tiers.models import DegradationPolicy
from tiers.selectors import (
    Ranking,
    closest_to_next_tier,
    members_at_risk,
    members_per_tier,
    next_degradation,
)

AT_RISK_DAYS = 14
FIGURES_KEPT_SECONDS = 10 * 60
COUNT_CAP = CappedPaginator.cap


class CXManagerSite(admin.AdminSite):
    """The CX Manager: the admin as the product for CX agents and marketers. Its index
    is the programme's dashboard."""

    site_header = "CX Manager"
    site_title = "CX Manager"
    index_title = "Dashboard"
    index_template = "admin/dashboard.html"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Members, ledger, tiers and history must never vanish in bulk: bulk delete
        # bypasses every rule. Single rows are deleted only where an admin allows it.
        self.disable_action("delete_selected")

    def autocomplete_view(self, request):
        return MemberAutocomplete.as_view(admin_site=self)(request)

    def index(self, request, extra_context=None):
        context = dict(extra_context or {})
        if request.user.has_perm("members.view_member"):
            context.update(dashboard(timezone.now()), find_member=FindMemberForm(site=self))
        return super().index(request, context)


class MemberAutocomplete(AutocompleteJsonView):
    """The member picker names more than the code and name, which many customers
    share: the e-mail and the tier tell them apart."""

    def serialize_result(self, obj, to_field_name):
        result = super().serialize_result(obj, to_field_name)
        if isinstance(obj, Member):
            result["text"] = f"{obj} · {obj.email} · {obj.effective_tier.name}"
        return result


class FindMemberForm(forms.Form):
    """Type a code, e-mail or name and pick the member: the admin's own autocomplete
    (the member admin's indexed prefix search), served from the admin's static files."""

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        # The autocomplete view needs a foreign key to members to describe the search.
        to_member = LedgerEntry._meta.get_field("member")
        self.fields["member"] = forms.ModelChoiceField(
            queryset=Member.objects.none(),
            widget=AutocompleteSelect(
                to_member,
                site,
                attrs={"style": "width: 400px"},
            ),
            label="Go to a member",
        )


def dashboard(now) -> dict:
    """The figures of the dashboard: a fixed number of queries whatever the number of
    members (one per tier at most). The two that scan a whole table are kept a few
    minutes, with the time they were taken."""
    ranking = Ranking()
    thresholds = ",".join(f"{tier.pk}:{tier.threshold}" for tier in ranking.tiers)
    tiers = kept(f"members-per-tier:{thresholds}", lambda: members_per_tier(ranking))
    most = max([row["members"] for row in tiers["value"]] + [1])
    for row in tiers["value"]:
        row["percent"] = round(100 * row["members"] / most, 1)
    degradation = DegradationPolicy.current()
    at_risk, at_risk_count = [], 0
    if steps := members_at_risk(degradation, ranking, now, days=AT_RISK_DAYS):
        soonest = {
            member.pk: member
            for step in steps
            for member in step.select_related("effective_tier").order_by("inactive_since")[:10]
        }
        at_risk = sorted(
            (
                (member, *next_degradation(member, degradation, ranking, now))
                for member in soonest.values()
            ),
            key=lambda row: row[1],
        )[:10]
        at_risk_count = reduce(operator.or_, steps).order_by()[: COUNT_CAP + 1].count()
    cutoff = next_cutoff(ExpiryPolicy.current(), timezone.localdate(now))
    return {
        "tiers": tiers["value"],
        "tiers_as_of": tiers["as_of"],
        "members_total": sum(row["members"] for row in tiers["value"]),
        "closest": closest_to_next_tier(ranking, limit=10),
        "degradation": degradation,
        "at_risk_days": AT_RISK_DAYS,
        "at_risk": at_risk,
        "at_risk_count": at_risk_count,
        "count_cap": COUNT_CAP,
        "cutoff": cutoff,
        "stake": kept(f"expiry-stake:{cutoff}", lambda: expiry_stake(cutoff)) if cutoff else None,
    }


def kept(key: str, compute) -> dict:
    """{"value": compute(), "as_of": when}, computed at most every few minutes."""
    key = f"dashboard:{key}"
    found = cache.get(key)
    if found is None:
        found = {"value": compute(), "as_of": timezone.now()}
        cache.set(key, found, FIGURES_KEPT_SECONDS)
    return found


def expiry_stake(cutoff) -> dict:
    """Members and points at stake at `cutoff`, from the query the expiry run uses."""
    by_tier, _ = expiry_preview(cutoff)
    return {"members": sum(row[1] for row in by_tier), "points": sum(row[2] for row in by_tier)}
