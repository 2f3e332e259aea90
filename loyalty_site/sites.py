from functools import partial

from django import forms
from django.contrib import admin
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.admin.widgets import AutocompleteSelect
from django.urls import path
from django.utils import timezone

from core import figures
from core.paginator import CappedPaginator
from loyalty_site import analytics_page, approvals_page
from loyalty_site.added_once import AddedOnce
from loyalty_site.checked_admin import CheckedInput
from loyalty_site.list_rows import QuickCheckbox
from loyalty_site.member_list import with_tier_names
from loyalty_site.member_search import NewestFirst
from members.models import Member
from points.expiry_selectors import coming_cutoff, kept_preview, stake_totals
from points.models import LedgerEntry
from points.selectors import programme
from tiers.selectors import at_risk, closest_to_next_tier, members_per_tier

AT_RISK_DAYS = 14
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

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every admin checks the ids and filters it is given (checked_admin), applies
        each add form once (added_once), and draws its rows' checkboxes quickly
        (list_rows)."""
        admin_class = admin_class or admin.ModelAdmin
        checked = type(
            admin_class.__name__,
            (AddedOnce, CheckedInput, QuickCheckbox, admin_class),
            {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__},
        )
        super().register(model_or_iterable, checked, **options)

    def autocomplete_view(self, request):
        return MemberAutocomplete.as_view(admin_site=self)(request)

    def get_urls(self):
        return [
            path(
                "analytics/",
                self.admin_view(partial(analytics_page.analytics_view, self)),
                name="analytics",
            ),
            path(
                "analytics/<slug:name>.csv",
                self.admin_view(partial(analytics_page.chart_csv_view, self)),
                name="analytics_csv",
            ),
            path(
                "approvals/",
                self.admin_view(partial(approvals_page.approvals_view, self)),
                name="approvals",
            ),
            *super().get_urls(),
        ]

    def index(self, request, extra_context=None):
        context = dict(extra_context or {})
        if request.user.has_perm("members.view_member"):
            context.update(dashboard(timezone.now()), find_member=FindMemberForm(site=self))
        context["analytics"] = request.user.has_perm(analytics_page.PERMISSION)
        if request.user.has_perm(approvals_page.APPROVE):
            context["requests_waiting"] = approvals_page.waiting()
        return super().index(request, context)


class MemberAutocomplete(AutocompleteJsonView):
    """The member picker names more than the code and name, which many customers
    share: the e-mail and the tier tell them apart."""

    def get_queryset(self):
        if "\x00" in self.term:  # no code, e-mail or name has one, and PostgreSQL cannot look
            return self.model_admin.get_queryset(self.request).none()
        found = super().get_queryset()
        if self.model_admin.model is not Member:
            return found
        found = with_tier_names(found)
        return found.order_by(*NewestFirst(found, self.paginate_by).order) if self.term else found

    def serialize_result(self, obj, to_field_name):
        result = super().serialize_result(obj, to_field_name)
        if isinstance(obj, Member):
            tier = self.model_admin.tier(obj)  # as the list has it: "Merged (closed)"
            result["text"] = f"{obj} · {obj.email} · {tier}"
        return result


class MemberPicker(AutocompleteSelect):
    """The admin's autocomplete with a placeholder: Select2's box, the one typed into,
    is named by it for a screen reader (the label names the hidden select)."""

    def build_attrs(self, base_attrs, extra_attrs=None):
        attrs = super().build_attrs(base_attrs, extra_attrs=extra_attrs)
        attrs["data-placeholder"] = "Type a code, e-mail or name"
        return attrs


class FindMemberForm(forms.Form):
    """Type a code, e-mail or name and pick the member: the admin's own autocomplete
    (the member admin's indexed prefix search), served from the admin's static files."""

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        # The autocomplete view needs a foreign key to members to describe the search.
        to_member = LedgerEntry._meta.get_field("member")
        self.fields["member"] = forms.ModelChoiceField(
            queryset=Member.objects.none(),
            widget=MemberPicker(
                to_member,
                site,
                attrs={"style": "width: 400px"},
            ),
            label="Go to a member",
        )


def dashboard(now) -> dict:
    """The figures of the dashboard: a fixed number of queries whatever the number of
    members (one per tier or degradation step at most). The two that scan a whole
    table are kept together a few minutes (core.figures), with the time they were
    taken; the others are live. Both follow the programme's version."""
    plan = programme()
    cutoff, kept = kept_figures(plan, now)
    tiers = kept["value"]["tiers"]
    most = max([row["members"] for row in tiers] + [1])
    for row in tiers:
        row["percent"] = round(100 * row["members"] / most, 1)
    at_risk_count, at_risk_rows = at_risk(
        plan.degradation, plan.ranking, now, days=AT_RISK_DAYS, limit=10, cap=COUNT_CAP
    )
    closest = closest_to_next_tier(plan.ranking, limit=10)
    return {
        "now": now,
        "kept_as_of": kept["as_of"],
        "tiers": tiers,
        "members_total": sum(row["members"] for row in tiers),
        "closest": closest,
        # Live, like the list: no kept figure may say "no members" beside it.
        "anyone": bool(closest) or Member.objects.exists(),
        "top_tier": plan.ranking.tiers[-1],
        "degradation": plan.degradation,
        "at_risk_days": AT_RISK_DAYS,
        "at_risk": at_risk_rows,
        "at_risk_count": at_risk_count,
        "count_cap": COUNT_CAP,
        "cutoff": cutoff,
        "stake": kept["value"]["stake"],
    }


def kept_figures(plan, now, *, max_age=figures.WARMED_SECONDS) -> tuple:
    """(next cutoff, the kept figures): members per tier and points at stake (the
    expiry preview's, kept with it), computed when older than `max_age` or out of date.
    The dashboard reads them; warm_dashboard_task renews them before a visit must."""
    cutoff = coming_cutoff(plan, now)
    kept = figures.kept(
        f"dashboard:{cutoff}",
        lambda: {
            "tiers": members_per_tier(plan.ranking),
            "stake": _stake(cutoff, plan, max_age) if cutoff else None,
        },
        version=plan.version,
        max_age=max_age,
    )
    return cutoff, kept


def _stake(cutoff, plan, max_age) -> dict:
    """Members and points at stake at `cutoff`, as the expiry preview keeps them (the
    query the expiry run uses), renewed at the same age as the dashboard's figures."""
    return stake_totals(kept_preview(cutoff, plan, max_age=max_age)["value"]["by_tier"])
