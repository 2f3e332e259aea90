"""The campaigns' pages (P3 and their audiences): the form a marketer fills in, with
whom a campaign reaches now and whether it stacks with others."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.validators import ProhibitNullCharactersValidator
from django.shortcuts import redirect
from django.utils import timezone

from core import figures
from core.admin import LABELLED_MOMENTS, ChangedOnPageForm, WritesWhatChangedAdmin, only_choices
from core.staff_input import invisible_in
from points.models import STORE_LENGTH, Campaign, CampaignStatus, Channel
from points.selectors import campaign_has_earned, campaign_reach, why_campaign_is_kept
from points.services.campaigns import save_campaign
from points.stacking import campaign_stacks
from tiers.models import ProgrammeVersion
from tiers.selectors import Ranking


class StoresField(forms.CharField):
    """A campaign's stores, written as store codes separated by commas."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        value = super().to_python(value)
        ProhibitNullCharactersValidator()(value)  # the list would hide it from the field's own
        codes = [code.strip() for code in value.split(",") if code.strip()]
        too_long = [code for code in codes if len(code) > STORE_LENGTH]
        if too_long:
            raise forms.ValidationError(
                f"A store code has at most {STORE_LENGTH} characters: {too_long[0][:60]}…"
            )
        for code in codes:
            if where := invisible_in(code):  # a paste's: no till's code would ever match
                raise forms.ValidationError(
                    f"A store code cannot hold an invisible character ({where}): no till "
                    "sends it, and the campaign would reach no purchase."
                )
        return list(dict.fromkeys(codes))


class CampaignForm(ChangedOnPageForm):
    channels = forms.MultipleChoiceField(
        choices=Channel.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked for every channel.",
    )
    stores = StoresField(
        required=False,
        help_text="Store codes as the tills send them, separated by commas (STORE-12, "
        "STORE-14); leave empty for every store.",
    )

    def clean(self):
        """A campaign that has earned points keeps its start in the past: its results
        (what it added, to whom) stay those of the dates it ran, and it stays in the
        programme analytics, never deleted (why_campaign_is_kept)."""
        cleaned = super().clean()
        saved, starts, now = self.instance, cleaned.get("starts_at"), timezone.now()
        if not (saved.pk and starts and starts > max(now, saved.starts_at)):
            return cleaned
        if not campaign_has_earned(saved):
            return cleaned
        if now >= saved.starts_at:
            self.add_error(
                "starts_at",
                f"“{saved.name}” has earned points since it started: its start stays no later "
                "than now, so that what it earned stays in its results. To run it "
                "later, end it now and add a new campaign for the later dates.",
            )
        else:  # not started, but a purchase dated ahead (up to a day) earned under it
            self.add_error(
                "starts_at",
                f"“{saved.name}” has already earned points on a purchase dated in it: its "
                "start cannot move later, so that what it earned stays in its results. To "
                "run it later, switch it off and add a new campaign for the later dates.",
            )
        return cleaned

    class Meta:
        model = Campaign
        fields = [
            "name",
            "multiplier",
            "starts_at",
            "ends_at",
            "tiers",
            "channels",
            "stores",
            "min_amount",
            "birthday_month_only",
            "is_active",
        ]
        widgets = {"tiers": forms.CheckboxSelectMultiple}
        help_texts = {"tiers": "Leave all unticked for every tier."}


class CampaignStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return CampaignStatus.choices

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


@admin.register(Campaign)
class CampaignAdmin(WritesWhatChangedAdmin):
    """P3: campaigns with who they reach and whether they run now; a campaign that runs
    with others says what they earn together. A page saves what its marketer changed,
    not the page's copy of what another saved meanwhile."""

    form = CampaignForm
    formfield_overrides = LABELLED_MOMENTS
    list_display = [
        "name",
        "times",
        "starts_at",
        "ends_at",
        "tier_names",
        "channel_names",
        "audience",
        "status",
    ]
    list_filter = [CampaignStatusFilter]
    change_form_template = "admin/points/campaign/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).with_status(timezone.now()).prefetch_related("tiers")

    def save_model(self, request, obj, form, change):
        save_campaign(campaign=obj, fields=self.changed_columns(obj, form) if change else None)

    @admin.display(description="Multiplier", ordering="multiplier")
    def times(self, campaign):
        return f"x{campaign.multiplier.normalize():f}"

    @admin.display(description="Tiers")
    def tier_names(self, campaign):
        return ", ".join(tier.name for tier in campaign.tiers.all()) or "All tiers"

    @admin.display(description="Channels")
    def channel_names(self, campaign):
        labels = dict(Channel.choices)
        return ", ".join(labels.get(c, c) for c in campaign.channels) or "All channels"

    @admin.display(description="Purchases")
    def audience(self, campaign):
        """The campaign's limits on the purchase and the member beyond tier and channel."""
        parts = []
        if campaign.stores:
            parts.append("in " + ", ".join(campaign.stores))
        if campaign.min_amount is not None:
            parts.append(f"from {campaign.min_amount:,}")
        if campaign.birthday_month_only:
            parts.append("in the member's birthday month")
        return "; ".join(parts) or "All"

    @admin.display(description="Status", ordering="status")
    def status(self, campaign):
        label = CampaignStatus(campaign.status).label
        if not campaign.is_active and campaign.ran:
            # Switched off after it started: the purchases made until then earn under it.
            local = timezone.localtime(campaign.runs_until)
            return f"{label} (ran until {local.day} {local:%b %Y, %H:%M})"
        return label

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "tiers" in form.base_fields:
            only_choices(form.base_fields["tiers"])
        return form

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        # The reach counts members: only for whoever may see the page
        if campaign and self.has_view_or_change_permission(request, campaign):
            extra["stacks"] = [s.message() for s in stacks_to_come(campaign)]
            extra["reach"] = reach_message(campaign)
        return super().change_view(request, object_id, form_url, extra)

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and not (obj and why_campaign_is_kept(obj, timezone.now()))

    def delete_view(self, request, object_id, extra_context=None):
        """A campaign that is kept goes back to its page, saying why (not a bare 403)."""
        campaign = self.get_object(request, unquote(object_id))
        if campaign and super().has_delete_permission(request, campaign):
            if why := why_campaign_is_kept(campaign, timezone.now()):
                self.message_user(request, why, messages.ERROR)
                return redirect("admin:points_campaign_change", campaign.pk)
        return super().delete_view(request, object_id, extra_context)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if "_continue" in request.POST:
            return  # the form it goes back to says it
        for stack in stacks_to_come(form.instance):
            self.message_user(request, stack.message(), messages.WARNING)


def stacks_to_come(campaign: Campaign) -> list:
    """The windows in which the campaign stacks with others: those still to come, for a
    campaign that runs or will (a window past warns of nothing the marketer can still
    change); all of them for a campaign that has ended or was switched off, whose page
    is its history."""
    now, stacks = timezone.now(), campaign_stacks(campaign, Ranking())
    return stacks if campaign.runs_until <= now else [s for s in stacks if s.ends_at > now]


def reach_message(campaign: Campaign) -> str:
    """How many members the campaign reaches today, in words. A scan of the members:
    kept a few minutes (core.figures), counted again when the programme (the campaign
    included) changes or a bulk job moves members."""
    now = timezone.now()
    # Counted again when it starts or ends, as well as each day and at each change.
    version = f"{ProgrammeVersion.current_token()}:{timezone.localdate(now)}"
    version += f":{campaign.status_at(now)}"
    kept = figures.kept(
        f"campaign-reach:{campaign.pk}", lambda: campaign_reach(campaign, now), version=version
    )
    reach = kept["value"]
    who = "members" if reach.audience != 1 else "member"
    if reach.status == CampaignStatus.RUNNING:
        text = f"Reaches {reach.members:,} {who} today, of {reach.open:,}"
    else:
        text = (
            f"Reaches no one today: {_not_running(campaign, reach.status)}. Its audience: "
            f"{reach.audience:,} {who}, of {reach.open:,}"
        )
    if campaign.birthday_month_only:
        text += f" (those whose birthday is in {reach.month_name})"
    limits = [
        "in its stores" if campaign.stores else "",
        "through its channels" if campaign.channels else "",
        f"of at least {campaign.min_amount}" if campaign.min_amount is not None else "",
    ]
    if limits := [limit for limit in limits if limit]:
        text += f", on their purchases {' and '.join(limits)}"
    counted = timezone.localtime(kept["as_of"])
    return f"{text}. Counted at {counted:%H:%M}."


def _not_running(campaign: Campaign, status: CampaignStatus) -> str:
    """Why a campaign gives its multiplier to nobody now."""
    if status == CampaignStatus.INACTIVE:
        return "it is switched off"
    if status == CampaignStatus.SCHEDULED:
        return f"it starts on {_day(campaign.starts_at)}"
    return f"it ended on {_day(campaign.ends_at)}"


def _day(moment) -> str:
    local = timezone.localtime(moment)
    return f"{local.day} {local:%b %Y, %H:%M}"
