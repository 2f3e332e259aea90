from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.cache import cache
from django.utils import timezone

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
STAKE_CACHE_SECONDS = 10 * 60


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

    def index(self, request, extra_context=None):
        context = dict(extra_context or {})
        if request.user.has_perm("members.view_member"):
            context.update(dashboard(timezone.now()), find_member=FindMemberForm(site=self))
        return super().index(request, context)


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
                attrs={"data-placeholder": "Go to a member…", "style": "width: 480px"},
            ),
            label="Go to a member",
        )


def dashboard(now) -> dict:
    """The figures of the dashboard: a fixed number of queries whatever the number of
    members (one per tier at most)."""
    ranking = Ranking()
    tiers = members_per_tier(ranking)
    most = max([row["members"] for row in tiers] + [1])
    for row in tiers:
        row["percent"] = round(100 * row["members"] / most, 1)
    degradation = DegradationPolicy.current()
    at_risk, at_risk_count = [], 0
    if degradation.enabled:
        members = members_at_risk(degradation, ranking, now, days=AT_RISK_DAYS)
        at_risk = [
            (member, *next_degradation(member, degradation, ranking, now))
            for member in members.select_related("effective_tier").order_by("inactive_since")[:10]
        ]
        at_risk_count = members.count()
    cutoff = next_cutoff(ExpiryPolicy.current(), timezone.localdate(now))
    return {
        "tiers": tiers,
        "members_total": sum(row["members"] for row in tiers),
        "closest": closest_to_next_tier(ranking, limit=10),
        "degradation": degradation,
        "at_risk_days": AT_RISK_DAYS,
        "at_risk": at_risk,
        "at_risk_count": at_risk_count,
        "cutoff": cutoff,
        "stake": expiry_stake(cutoff) if cutoff else None,
    }


def expiry_stake(cutoff) -> dict:
    """Members and points at stake at `cutoff`, from the query the expiry run uses.
    It reads the whole ledger, so the figure is kept a few minutes (with its time)."""
    key = f"dashboard:expiry-stake:{cutoff.isoformat()}"
    stake = cache.get(key)
    if stake is None:
        by_tier, _ = expiry_preview(cutoff)
        stake = {
            "members": sum(row[1] for row in by_tier),
            "points": sum(row[2] for row in by_tier),
            "as_of": timezone.now(),
        }
        cache.set(key, stake, STAKE_CACHE_SECONDS)
    return stake
