import uuid

from django.contrib import admin, messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from core.admin import (
    LABELLED_MOMENTS,
    ChangedOnPageForm,
    ReadOnlyAdminMixin,
    WritesWhatChangedAdmin,
    action_confirmation,
    chosen_for_action,
    only_choices,
    with_separators,
)
from core.kept import KeptWhileNamedAdmin, named_by
from core.paginator import CappedPaginator
from core.staff_input import is_blank
from core.words import counted
from members.selectors import whole_name
from points.models import Channel
from rewards.codes import is_code, normalized
from rewards.models import Redemption, Reward, VoucherStatus, sees_voucher_codes
from rewards.services import (
    CANCEL_REASON_LENGTH,
    cancel_redemption,
    use_voucher,
    why_not_cancellable,
)

ACTION_LIMIT = 1_000  # redemptions one cancel or use acts on, each listed on its page


class RewardForm(ChangedOnPageForm):
    """The stock as the page showed it comes back with the form (as every field does),
    so that units redeemed while a marketer edits the reward are never put back by the
    save."""

    class Meta:
        model = Reward
        # Every field a marketer edits (the admin passes its own list, the same).
        fields = [f.name for f in Reward._meta.fields if f.editable and not f.auto_created]

    def clean_stock(self):
        stock = self.cleaned_data["stock"]
        if self.instance.pk is None or "stock" not in self.changed_data:
            return stock
        shown = self.fields["stock"].to_python(self.data.get(self["stock"].html_initial_name))
        # Under the reward's lock, held until the page's save commits (the admin saves in
        # one transaction): a redemption that took a unit and has not committed yet is
        # waited for and seen, not overwritten by the stock typed.
        now = (
            Reward.objects.select_for_update()
            .filter(pk=self.instance.pk)
            .values_list("stock", flat=True)
            .first()
        )
        if now != shown:
            # The form shown again reads against the stock now, so that the marketer's
            # next save goes through.
            self.data = self.data.copy()
            self.data[self["stock"].html_initial_name] = "" if now is None else now
            left = "unlimited" if now is None else f"{now:,} left"
            raise ValidationError(
                f"Redemptions changed the stock while this page was open (now {left}): "
                "enter the stock again."
            )
        return stock


@admin.register(Reward)
class RewardAdmin(KeptWhileNamedAdmin, WritesWhatChangedAdmin):
    form = RewardForm
    formfield_overrides = LABELLED_MOMENTS

    list_display = [
        "name",
        "cost_shown",
        "voucher_value",
        "voucher_valid_days",
        "min_tier",
        "stock_shown",
        "available_from",
        "available_until",
        "is_active",
    ]
    cost_shown = with_separators("points_cost", "Points cost")

    @admin.display(description="Stock", ordering="stock")
    def stock_shown(self, reward):
        return "Unlimited" if reward.stock is None else intcomma(reward.stock)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "min_tier" in form.base_fields:
            only_choices(form.base_fields["min_tier"])
        return form

    list_select_related = ["min_tier"]
    list_filter = ["is_active", "min_tier"]
    search_fields = ["name"]

    def what_keeps(self, reward):
        """A redeemed reward stays: its redemptions (vouchers, refunds) name it for good."""
        kept = list(named_by(reward))
        if kept:
            kept.append(
                "Switch it off instead (untick “Is active”): its vouchers stay as they are."
            )
        return kept


class VoucherStatusFilter(admin.SimpleListFilter):
    """W5's four statuses, by the model's own rule (Redemption.voucher_status_q)."""

    title = "voucher status"
    parameter_name = "voucher"

    def lookups(self, request, model_admin):
        return VoucherStatus.choices

    def queryset(self, request, queryset):
        if self.value() not in VoucherStatus.values:
            return queryset
        status = VoucherStatus(self.value())
        return queryset.filter(Redemption.voucher_status_q(status, timezone.localdate()))


def _in_one_piece(code: str):
    """A code as it is read out: in one piece, never broken across lines."""
    return format_html('<code style="white-space: nowrap">{}</code>', code)


def _codes_for(user, fields) -> list:
    """The columns or fields with the voucher code as `user` may see it (rewards.models,
    sees_voucher_codes): the ModelAdmin is shared by every request, so the choice is a
    column, not a state."""
    if sees_voucher_codes(user):
        return list(fields)
    return ["masked_code" if field == "voucher_code" else field for field in fields]


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The history of redemptions and their vouchers; cancelling (W4) and marking a
    voucher used at the desk (W5) go through the services."""

    # The code and its status first: what an agent at the desk looks for. Narrow
    # columns, so that all fit on a laptop's screen beside the filter (who redeemed it
    # is on the redemption's page).
    list_display = [
        "voucher_code",
        "voucher",
        "redeemed",
        "customer",
        "reward_as_redeemed",
        "value",
        "cost",
    ]
    list_select_related = ["member"]
    list_filter = [VoucherStatusFilter]
    # The start of a customer code, e-mail or last name (the member search's indexes),
    # or a whole voucher code (get_search_results).
    search_fields = [
        "member__external_id__istartswith",
        "member__email__istartswith",
        "member__last_name__folded__startswith",
    ]
    search_help_text = (
        "A whole voucher code (dashes and case do not matter), or a customer code, e-mail "
        "or last name: the whole or its start."
    )
    show_full_result_count = False
    # No "Show counts" on the status filter: it counts every redemption for each status,
    # minutes at a million (bench/vouchers.py), where the list stops counting at 1,000.
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedPaginator
    # Sorted by code, date or member, from their indexes; by reward, value or points it
    # sorted every redemption on each page (0.2 s at 200,000, growing with them).
    sortable_by = ["voucher_code", "redeemed", "customer"]
    actions = ["cancel", "use"]
    readonly_fields = ["voucher_code", "voucher"]  # on the (read-only) redemption page

    def get_list_display(self, request):
        return _codes_for(request.user, super().get_list_display(request))

    def get_readonly_fields(self, request, obj=None):
        return _codes_for(request.user, super().get_readonly_fields(request, obj))

    @admin.display(description="Code", ordering="code")
    def voucher_code(self, redemption):
        return _in_one_piece(redemption.shown_code)

    @admin.display(description="Code")  # not sorted by: the order would tell of the codes
    def masked_code(self, redemption):
        return _in_one_piece(redemption.masked_code)

    def lookup_allowed(self, lookup, value, request=None):
        """Filters on the code in the address (?code__startswith=M9) only for those who
        see codes whole: others would spell out a valid code letter by letter."""
        if lookup.split("__")[0] == "code" and not (request and sees_voucher_codes(request.user)):
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description="Voucher")
    def voucher(self, redemption):
        # "Used 15 Nov 2026," on one line, the store on the next if need be
        parts = ((part,) for part in redemption.voucher_summary.split(", "))
        return format_html_join(", ", '<span style="white-space: nowrap">{}</span>', parts)

    @admin.display(description="Redeemed", ordering="redeemed_at")
    def redeemed(self, redemption):
        return f"{timezone.localtime(redemption.redeemed_at):%-d %b %Y}"

    @admin.display(description="Member", ordering="member__external_id")
    def customer(self, redemption):
        return format_html(
            '<span style="white-space: nowrap">{}</span>', redemption.member.external_id
        )

    @admin.display(description="Pts")
    def cost(self, redemption):
        return f"{redemption.points:,}"

    @admin.display(description="Reward")
    def reward_as_redeemed(self, redemption):
        return redemption.reward_name  # its name then: a renamed reward's vouchers keep it

    def get_search_results(self, request, queryset, search_term):
        """A voucher code finds its redemption (by the unique index, not a scan of the
        members' columns); anything else searches the member as the member list does,
        a name of several words as a whole too (whole_name)."""
        code = normalized(search_term)
        if is_code(code) and (found := queryset.filter(code=code)).exists():
            return found, False
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if names := whole_name(search_term, path="member"):
            found |= queryset.filter(names)
        return found, may_have_duplicates

    @admin.action(permissions=["cancel"], description="Cancel and refund the selected redemptions")
    def cancel(self, request, queryset):
        """W4, after a page that lists what is refunded and asks why."""
        reason = " ".join(request.POST.get("reason", "").split())
        if "\x00" in reason:  # no database keeps it: asked again, as when empty
            self.message_user(request, "A reason cannot hold a null character.", messages.ERROR)
            reason = ""
        chosen = self._chosen(request, queryset)
        if chosen is None:
            return None
        if len(reason) > CANCEL_REASON_LENGTH:
            self.message_user(
                request,
                f"Keep the reason to {CANCEL_REASON_LENGTH} characters (it has {len(reason)}).",
                messages.ERROR,
            )
            reason = ""
        if is_blank(reason):
            return self._confirmation(
                request,
                "cancel",
                chosen,
                title="Cancel and refund these redemptions?",
                asked="reason" in request.POST,
                reason_length=CANCEL_REASON_LENGTH,
                workable=sum(why_not_cancellable(r) is None for r in chosen),
            )
        cancelled = 0
        for redemption in chosen:
            try:
                with transaction.atomic():  # the cancellation and its history line
                    cancel_redemption(redemption=redemption, by=request.user, reason=reason)
                    self.log_change(request, redemption, f"Cancelled and refunded: {reason}")
                cancelled += 1
            except ValidationError as exc:
                self._refused(request, redemption, exc)
        if cancelled:
            self.message_user(
                request, f"{counted(cancelled, 'redemption')} cancelled and refunded."
            )

    @admin.action(permissions=["use"], description="Mark the selected vouchers used (at the desk)")
    def use(self, request, queryset):
        """W5 at the desk: a page that shows the vouchers, then `use_voucher` for each.
        The page's one-time token makes each use's id, so sending the page twice uses
        nothing twice."""
        chosen = self._chosen(request, queryset)
        if chosen is None:
            return None
        try:
            token = uuid.UUID(request.POST.get("token", ""))
        except ValueError:
            valid = sum(r.voucher_status == VoucherStatus.VALID for r in chosen)
            return self._confirmation(
                request,
                "use",
                chosen,
                title="Mark these vouchers used?",
                token=uuid.uuid4(),
                workable=valid,
            )
        used, repeated = [], 0
        for redemption in chosen:
            try:
                with transaction.atomic():  # the use and its history line
                    done = use_voucher(
                        code=redemption.code,
                        external_id=f"desk-{token}-{redemption.pk}",
                        by=request.user,
                        channel=Channel.MANUAL,
                    )
                    if not getattr(done, "skipped", False):
                        self.log_change(request, done, "Voucher used at the desk")
            except ValidationError as exc:
                self._refused(request, redemption, exc)
                continue
            if getattr(done, "skipped", False):
                repeated += 1
            else:
                used.append(f"{redemption.shown_code} ({redemption.member.external_id})")
        if used:
            self.message_user(request, f"Marked used: {', '.join(used)}.")
        if repeated:
            message = "This page was already sent: no voucher was used twice."
            self.message_user(request, message, messages.WARNING)

    def _refused(self, request, redemption, exc: ValidationError) -> None:
        """Why an action left one of the redemptions it was given as it was, naming it as
        the list does (code and customer): of several refused, each says which."""
        named = f"{redemption.shown_code} ({redemption.member.external_id})"
        self.message_user(request, f"{named}: {' '.join(exc.messages)}", messages.ERROR)

    def _chosen(self, request, queryset) -> list[Redemption] | None:
        too_many = (
            f"Choose at most {ACTION_LIMIT:,} redemptions at once: narrow the list with the "
            "search or the filters."
        )
        rows = queryset.select_related("member__merged_into")  # the holder, refunded (M5)
        return chosen_for_action(self, request, rows, limit=ACTION_LIMIT, too_many=too_many)

    def _confirmation(self, request, action: str, chosen, *, title: str, **context):
        template = f"admin/rewards/redemption/{action}_confirmation.html"
        return action_confirmation(
            self, request, template, chosen, title=title, redemptions=chosen, **context
        )

    def has_cancel_permission(self, request):
        return request.user.has_perm("rewards.cancel_redemption")

    def has_use_permission(self, request):
        return request.user.has_perm("rewards.use_voucher")
