"""The CX Manager's member page: everything an agent needs while the customer waits.
What the agent does there is in member_actions."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.dateparse import parse_date
from import_export.admin import ExportMixin
from import_export.formats import base_formats

from core.admin import LABELLED_MOMENTS, IdField
from core.exports import SPREADSHEET_ENCODING
from core.paginator import CappedPaginator
from loyalty_site.member_actions import AssignPointsForm, MemberActions, RedeemForm
from loyalty_site.member_erasure import MemberErasure
from loyalty_site.member_governance import MemberGovernance, governance_context
from loyalty_site.member_list import MemberList, TierFilter
from loyalty_site.member_merge import MemberMerge, MergeForm
from members.contact_details import change_contact_details, may_change_birth_date
from members.models import Member
from members.resources import MemberResource
from members.selectors import accounts_merged_into, survivor_of_search, whole_name
from members.services import enroll_member, referrer
from points.expiry_selectors import cutoff_instant
from points.explanations import entry_explanation, tier_explanation, tier_history, why_closed
from points.models import (
    ExpiryPolicy,
    LedgerEntry,
)
from points.selectors import balances_and_stake, member_as_of, programme
from points.services.referrals import referral_key
from rewards.codes import is_code, normalized
from rewards.models import Redemption, VoucherStatus, sees_voucher_codes
from rewards.selectors import catalogue
from tiers.selectors import TONIGHT, drop_time, next_degradation

LEDGER_PAGE_SIZE = 25
HISTORY_ROWS = 20

VIEW_REDEMPTION = "rewards.view_redemption"  # voucher codes are shown with it


def member_context(
    request,
    member,
    *,
    assign_form=None,
    merge_form=None,
    match_form=None,
    freeze_form=None,
    now=None,
) -> dict:
    """The member page's panels, a fixed number of queries whatever the member's
    history: balances, tiers and progress, degradation, expiry, catalogue, history,
    ledger, each tier change and entry explained; with `?as_of=YYYY-MM-DD`, the member
    as they stood at the end of that day and the ledger up to it."""
    now = now or timezone.now()
    plan = programme()
    ranking = plan.ranking
    history = tier_history(member, ranking, limit=HISTORY_ROWS)
    as_of = as_of_context(request, member, ranking, now)
    ledger_page = Paginator(
        ledger_lines(member, until=as_of and as_of.get("at")), LEDGER_PAGE_SIZE
    ).get_page(request.GET.get("ledger"))
    with_balance_after(ledger_page, member)
    for entry in ledger_page:
        entry.explanation = entry_explanation(entry)
    user = request.user
    open_member = not member.is_merged
    redeems = open_member and not member.erased_at  # rewards.services.check_redeems
    qualified = ranking.by_pk[member.qualified_tier_id]
    effective = ranking.by_pk[member.effective_tier_id]
    figures, cutoff, at_stake = balances_and_stake(member, plan, now=now)
    available, pending = figures
    # A closed account reaches no tier and redeems nothing: no way to either is shown.
    # From the tier the points reach under today's thresholds: the recalculation may not
    # have reached the member yet after a marketer changed them (T3).
    reached = ranking.qualified_for(member.lifetime_points)
    next_tier = ranking.next_above(reached.pk) if open_member else None
    progress = None
    if next_tier:
        span = next_tier.threshold - reached.threshold
        done = 100 * (member.lifetime_points - reached.threshold) / span
        progress = {
            "tier": next_tier,
            "to_go": next_tier.threshold - member.lifetime_points,
            "percent": round(min(max(done, 0), 100), 1),  # below 0 when points went negative
        }
    drop = next_degradation(member, plan.degradation, ranking, now)
    return {
        "member": member,
        "now": now,
        "today": timezone.localdate(now),
        "available": available,
        "pending": pending,
        "qualified": qualified,
        "effective": effective,
        "progress": progress,
        "degradation_enabled": plan.degradation.enabled,
        "next_degradation": drop,
        "degradation_overdue": bool(drop) and drop_time(drop[0], now) == TONIGHT,
        "expiry": {"cutoff": cutoff, "points": at_stake},
        "expiry_on": plan.expiry.cycle != ExpiryPolicy.Cycle.NEVER,
        "catalogue": redeems and catalogue(member, now=now, ranking=ranking, figures=figures),
        "tier_history": history,
        "tier_explanation": why_closed(member) or tier_explanation(history, effective),
        "as_of": as_of,
        "ledger_page": ledger_page,
        "merged_members": accounts_merged_into(member)[:HISTORY_ROWS],
        "referrer": member.referred_by,
        "referral_paid": referral_paid(member),
        "referrals": member.referrals.order_by("joined_at", "pk")[:HISTORY_ROWS],
        **redemptions_context(member, user),
        # A closed account earns, redeems and is adjusted no more: no forms to try,
        # except one sent back with why it was refused (the account closed meanwhile).
        "assign_form": assign_form
        or (AssignPointsForm() if open_member and user.has_perm("points.assign_points") else None),
        "redeem_form": RedeemForm()
        if redeems and user.has_perm("rewards.add_redemption")
        else None,
        "merge_form": merge_form
        or (
            MergeForm()
            if open_member and not member.erased_at and user.has_perm("members.merge_member")
            else None
        ),
        "can_cancel": user.has_perm("rewards.cancel_redemption"),
        **governance_context(user, member, now=now, match_form=match_form, freeze_form=freeze_form),
    }


def focus_first_error(form) -> None:
    """The page opens on the form sent back: its first wrong field has the focus, so the
    browser scrolls to it (on a phone it is screens below the top) and a screen reader
    reads it with its error."""
    wrong = [name for name in form.errors if name in form.fields]
    if wrong:
        form.fields[wrong[0]].widget.attrs["autofocus"] = True


def redemptions_context(member, user) -> dict:
    """The member's latest redemptions (HISTORY_ROWS) and, when they have more, how many
    in all, for a link to the redemption list of this member (a regular customer's older
    vouchers may still be valid: one query more only then), and the valid vouchers left
    on accounts merged into this one (one grouped query)."""
    redemptions = Redemption.objects.filter(member=member)
    latest = list(redemptions.select_related("redeemed_by")[: HISTORY_ROWS + 1])
    sees_vouchers = user.has_perm(VIEW_REDEMPTION)
    more = len(latest) > HISTORY_ROWS and sees_vouchers
    # Vouchers stay on the accounts merged into this one (M5): the customer's valid ones
    # are named here, for the agent at the desk, with the account that holds them.
    valid_elsewhere = (
        Redemption.objects.filter(
            Redemption.voucher_status_q(VoucherStatus.VALID, timezone.localdate()),
            member__merged_into=member,
        )
        .values("member_id", "member__external_id")
        .annotate(count=Count("pk"))
        .order_by("member__external_id")
    )
    return {
        "redemptions": latest[:HISTORY_ROWS],
        "all_redemptions": redemptions.count() if more else None,
        "valid_vouchers_of_merged": list(valid_elsewhere) if not member.merged_into_id else [],
        # A valid code is money at a till: for the desk only (rewards.models).
        "voucher_codes_shown": sees_voucher_codes(user),
    }


def _day_or_none(text: str):
    """The day `text` names as YYYY-MM-DD, or None: also for a day no calendar has (31
    February), where parse_date raises."""
    try:
        return parse_date(text)
    except ValueError:
        return None


def as_of_context(request, member, ranking, now) -> dict | None:
    """The "as of" panel: `?as_of=` a date, read as the end of that day in the
    programme's time zone; the member's figures then (member_as_of) and why they held
    their tier. None without a date; a date that is no date or is in the future says so."""
    text = request.GET.get("as_of", "").strip()
    if not text:
        return None
    day = _day_or_none(text)
    if day is None:
        return {"text": text, "error": "Give a date such as 2026-07-23."}
    if day > timezone.localdate(now):
        return {"text": text, "error": "Give a date up to today: the future is not known yet."}
    at = end_of_day(day)
    history = tier_history(member, ranking, at=at, limit=HISTORY_ROWS)
    figures = member_as_of(member, at)
    return {
        "text": text,
        "day": day,
        "at": at,
        "figures": figures,
        "before_joining": at < member.joined_at,
        "tier_explanation": tier_explanation(history, figures["effective_tier"]),
    }


def referral_paid(member) -> int | None:
    """The points the member's referrer got at the member's first purchase, if any."""
    if member.referred_by_id is None:
        return None
    paid = LedgerEntry.objects.filter(external_id=referral_key(member))
    return paid.values_list("points", flat=True).first()


def end_of_day(day):
    """The last moment of a day in the programme's time zone."""
    return cutoff_instant(day) - timedelta(microseconds=1)


def ledger_lines(member, *, until=None):
    """The member's entries newest first (issued up to `until`, if given), each with its
    transaction."""
    entries = LedgerEntry.objects.filter(member=member)
    if until is not None:
        entries = entries.filter(issued_at__lte=until)
    return (
        entries.select_related("definition", "created_by", "transaction", "transaction__original")
        # An adjustment above a goodwill limit names the supervisor who approved it.
        .annotate(approved_by=F("request__decided_by__username"))
        .order_by("-issued_at", "-pk")
    )


def with_balance_after(page, member) -> None:
    """Each entry of a page of ledger_lines with the balance of redeemable points
    (pending included) after it, in the order entries were issued (then by id): a
    statement an agent can read to the customer line by line. The page's first line is
    read in one statement from the nearer end of the ledger: the balance (the ledger's
    cache) less the entries issued after it, or the sum of those up to it. A window
    over all of a corporate card's million entries took 10 s a page."""
    entries = list(page)
    if not entries:
        return
    top = entries[0]
    after = Q(issued_at__gt=top.issued_at) | Q(issued_at=top.issued_at, pk__gt=top.pk)
    redeemable = LedgerEntry.objects.filter(member=OuterRef("pk"), redeemable=True)
    newer, listed = page.start_index() - 1, page.paginator.count
    from_the_top = newer < listed - newer  # fewer entries after this page than up to it
    counted = redeemable.filter(after) if from_the_top else redeemable.exclude(after)
    sum_of = counted.order_by().values("member").annotate(total=Sum("points")).values("total")
    balance, summed = (
        Member.objects.filter(pk=member.pk)
        .values_list("points_balance", Coalesce(Subquery(sum_of), 0))
        .get()
    )
    after_line = balance - summed if from_the_top else summed
    for entry in entries:
        entry.balance_after = after_line
        after_line -= entry.points if entry.redeemable else 0


class MemberForm(forms.ModelForm):
    class Meta:
        # Customer codes read as every door reads them (core.ids); the admin gives the
        # model and the fields.
        field_classes = {"external_id": IdField}

    referred_by_code = IdField(
        required=False,
        max_length=64,
        label="Referred by",
        help_text="The customer code of the member who referred them: paid the referral "
        "points at this member's first purchase.",
    )

    def clean(self):
        cleaned = super().clean()
        code = cleaned.get("referred_by_code", "")
        try:
            referrer(code, member_code=(cleaned.get("external_id") or "").strip())
        except ValidationError as exc:
            self.add_error("referred_by_code", exc.message_dict["referred_by"])
        return cleaned


class MemberAdmin(
    MemberMerge, MemberGovernance, MemberActions, MemberErasure, ExportMixin, admin.ModelAdmin
):
    """The member page of the CX Manager: search, balances, tiers, history, ledger,
    catalogue, and the agent's two actions (assign points, redeem a reward)."""

    resource_classes = [MemberResource]
    formats = [base_formats.CSV]
    to_encoding = SPREADSHEET_ENCODING
    change_form_template = "admin/members/member/change_form.html"
    formfield_overrides = LABELLED_MOMENTS
    # Few, narrow columns: the figures stay on screen on a laptop.
    list_display = ["external_id", "name", "email", "tier", "points", "lifetime"]
    list_filter = [("effective_tier", TierFilter)]
    # Exact or prefix, case-insensitive: indexed on PostgreSQL (members migrations 0004
    # and 0009).
    search_fields = [
        "external_id__istartswith",
        "email__istartswith",
        # without accents or case (core.folding): "munoz" finds Muñoz
        "first_name__folded__startswith",
        "last_name__folded__startswith",
        "phone__startswith",
    ]
    search_help_text = (
        "Customer code, e-mail, first or last name (with or without accents; a compound one"
        " whole), or phone as stored: the whole or its start; or a voucher code, for the"
        " member who redeemed it."
    )
    sortable_by = ["external_id", "lifetime"]
    ordering = ["-pk"]
    show_full_result_count = False
    paginator = CappedPaginator
    fields = ["external_id", "first_name", "last_name", "email", "phone", "birth_date", "joined_at"]
    form = MemberForm
    actions = ["erase"]

    def get_fields(self, request, obj=None):
        # Who referred a member is said once, at enrolment (it decides a payment).
        return self.fields if obj else [*self.fields, "referred_by_code"]

    @admin.display(description="Name")
    def name(self, member):
        return f"{member.first_name} {member.last_name}".strip()

    @admin.display(description="Points", ordering="points_balance")
    def points(self, member):
        return f"{member.points_balance:,}"

    @admin.display(description="Lifetime", ordering="lifetime_points")
    def lifetime(self, member):
        return f"{member.lifetime_points:,}"

    @admin.display(description="Tier")
    def tier(self, member):
        """The effective tier, which benefits follow; the qualified one when it differs."""
        if member.is_merged:
            return "Merged (closed)"
        if member.is_degraded:  # the names: member_search.with_tier_names
            return f"{member.effective_tier_name} (qualified {member.qualified_tier_name})"
        return member.effective_tier_name

    def get_search_results(self, request, queryset, search_term):
        """The admin's search (and the member picker): a merged account's customer code
        finds the member it was merged into as well as the closed account. The admin
        looks for each word on its own; a phone stored with spaces ("+34 600 000 001")
        is also found by the whole term, or its start, as stored, and a name of several
        words ("García López", "María García López") by the whole name (whole_name). A
        voucher code, however it is read out or spaced, finds the member who redeemed it,
        for whoever may see redemptions."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if survivor := survivor_of_search(search_term):
            found |= queryset.filter(pk=survivor)
        # (for whoever may see redemptions: a code is money at a till)
        if is_code(code := normalized(search_term)) and request.user.has_perm(VIEW_REDEMPTION):
            # The member first (the code's unique index), then by its id: a subquery in
            # the OR would scan every member (3.5 s at a million).
            redeemed = Redemption.objects.filter(code=code).values_list("member", flat=True)
            found |= queryset.filter(pk__in=list(redeemed))
        if " " in (term := search_term.strip()):
            found |= queryset.filter(phone__startswith=term)
        if names := whole_name(term):
            found |= queryset.filter(names)
        return found, may_have_duplicates

    def get_changelist(self, request, **kwargs):
        return MemberList

    def get_queryset(self, request):
        # The member's page reads both tiers. The list and the picker join none: they
        # name them from the cached programme (member_search).
        return super().get_queryset(request).select_related("qualified_tier", "effective_tier")

    def has_export_permission(self, request):
        # E-mails and phones of every member: not for every role that may look one up.
        return request.user.has_perm("members.export_member")

    def get_readonly_fields(self, request, obj=None):
        # The customer code is the key other systems use: fixed once enrolled; so is the
        # joining date, from which inactivity counts and the welcome points and the
        # history are dated. An erased member's data is gone for good: nothing to edit.
        # A birth date on file is a supervisor's to correct (members.contact_details).
        if obj and obj.erased_at:
            return self.fields
        fixed = ["external_id", "joined_at"] if obj else []
        if obj and not may_change_birth_date(obj, request.user):
            fixed.append("birth_date")
        return fixed

    def has_delete_permission(self, request, obj=None):
        return False

    def _say_birth_date_kept(self, request, obj, form):
        """A page opened before another gave the birth date sends one the form no longer
        takes (get_readonly_fields): the agent hears it was not saved."""
        # (nonsense is no error here: the form no longer reads the field to say so)
        sent = _day_or_none(request.POST.get("birth_date") or "")
        if "birth_date" not in form.fields and sent and sent != obj.birth_date:
            given = f"{obj.birth_date.day} {obj.birth_date:%b %Y}"
            self.message_user(
                request,
                f"{obj} already has a birth date ({given}): a CX supervisor corrects it. It "
                "was not changed.",
                messages.WARNING,
            )

    def get_urls(self):
        return self.merge_urls() + self.governance_urls() + self.action_urls() + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = dict(extra_context or {})
        member = self.get_object(request, object_id)
        # The page's figures only for whoever may see them (Django's view refuses the rest)
        if member is not None and self.has_view_or_change_permission(request, member):
            names = ("assign_form", "merge_form", "match_form", "freeze_form")
            forms = {name: context.pop(name, None) for name in names}
            context.update(member_context(request, member, **forms))
            refused = next((form for form in forms.values() if form and form.errors), None)
            if refused:
                focus_first_error(refused)
            context["form_refused"] = bool(refused)  # the tab's title says so
            context.setdefault("title", str(member))
            context.setdefault("subtitle", None)
            context.setdefault("show_save_and_add_another", False)
        try:
            return super().change_view(request, object_id, form_url, context)
        except ValidationError as refused:  # from save_model; nothing was written
            self.message_user(request, " ".join(refused.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except ValidationError:
            pass  # refused by enroll_member after the form's checks; nothing was written
        try:
            # The form checks again: a customer code another door enrolled meanwhile is
            # now an error on the form, with everything the agent typed.
            return super().add_view(request, form_url, extra_context)
        except ValidationError as refused:
            self.message_user(request, " ".join(refused.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        """A new member is enrolled through the service (entry tier, history); the form
        has already checked the fields, the customer code's uniqueness included."""
        if change:
            if obj.erased_at:  # a form opened before the erasure: its page has no fields now
                raise ValidationError(
                    f"{obj} is erased: their personal data is gone, nothing was saved."
                )
            changed = {
                name: getattr(obj, name) for name in form.changed_data if name in self.fields
            }
            change_contact_details(member=obj, changes=changed, by=request.user)
            self._say_birth_date_kept(request, obj, form)
            return None
        member = enroll_member(
            external_id=obj.external_id,
            email=obj.email,
            first_name=obj.first_name,
            last_name=obj.last_name,
            phone=obj.phone,
            birth_date=obj.birth_date,
            joined_at=obj.joined_at,
            referred_by=form.cleaned_data.get("referred_by_code", ""),
            by=request.user,
        )
        obj.pk, obj._state.adding = member.pk, False
