import os
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.views.decorators.http import require_POST
from import_export.admin import ImportExportMixin
from import_export.formats import base_formats
from import_export.forms import ImportForm

from core.admin import (
    ConfirmedPolicyAdmin,
    ReadOnlyAdminMixin,
    WritesWhatChangedAdmin,
    with_separators,
)
from core.exports import SPREADSHEET_ENCODING
from core.kept import KeptWhileNamedAdmin, named_by
from core.paginator import CappedPaginator
from core.private_files import PENDING_KEPT_SECONDS, PendingUploads
from core.words import counted
from members.models import Member
from points import batch_admin, campaign_admin  # noqa: F401 - register their pages
from points.expiry_selectors import (
    coming_cutoff,
    expiry_impact,
    expiry_skipped,
    kept_preview,
    next_cutoff,
    reminder_day,
    stake_totals,
    unprocessed_cutoffs,
    with_members,
)
from points.models import (
    ExpiryPolicy,
    ExpiryRun,
    LedgerEntry,
    PointDefinition,
    Transaction,
)
from points.resources import TransactionCSV, TransactionResource
from points.selectors import programme
from points.services.adjustments import NOT_GIVEN_BY_HAND
from points.services.expiry import refuse_until_expiry_ran, remind_once_committed


@admin.register(PointDefinition)
class PointDefinitionAdmin(KeptWhileNamedAdmin, WritesWhatChangedAdmin):
    """A page saves what its marketer changed (an earn rate), not the page's copy of
    what another saved meanwhile."""

    list_display = [
        "name",
        "handle",
        "kind",
        "earn_rate",
        "points",
        "accrue_delay_days",
        "counts_toward_tier",
        "redeemable",
        "awarded_on",
        "is_active",
    ]
    list_filter = ["kind", "awarded_on", "is_active"]
    prepopulated_fields = {"handle": ["name"]}

    # The services find the system definitions by handle: it and the kind stay fixed,
    # whatever a form posts, and the rows stay. What the programme writes itself (a
    # tier-up bonus, an opening balance) has its own fixed counting (T2, members
    # import): only its name is the marketer's. Manual adjustments are spendable at once
    # (P6): their name and whether they count toward the tier are the marketer's.
    def get_readonly_fields(self, request, obj=None):
        if obj is None or not _is_system(obj):
            return []
        editable = {"name"} if obj.handle in NOT_GIVEN_BY_HAND else {"name", "counts_toward_tier"}
        return [f.name for f in self.model._meta.fields if f.editable and f.name not in editable]

    def get_prepopulated_fields(self, request, obj=None):
        return {} if _is_system(obj) else self.prepopulated_fields

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not _is_system(obj)

    def what_keeps(self, definition):
        # The definition purchases earn by, even one no purchase names yet (P1).
        if why := definition.why_purchases_need_it():
            yield why
        yield from named_by(definition)


def _is_system(definition) -> bool:
    return definition is not None and definition.handle in PointDefinition.SYSTEM_HANDLES


class LedgerEntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = LedgerEntry
    fields = ["issued_at", "kind", "points", "accrue_at", "reason"]
    readonly_fields = fields
    extra = 0


ADMIN_IMPORT_MAX_MB = 5  # about 50,000 rows; larger files go through Imports › Upload


def _upload_salt(request) -> str:
    return f"points.transaction-import:{request.user.pk}"


class TransactionImportForm(ImportForm):
    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        if upload.size > ADMIN_IMPORT_MAX_MB * 1024 * 1024:
            raise forms.ValidationError(
                f"This file is {upload.size / 1024 / 1024:.1f} MB. Files above "
                f"{ADMIN_IMPORT_MAX_MB} MB go through Imports › Upload a file, which takes "
                "files of any size and checks them in the background."
            )
        return upload


class ByBatchMixin:
    """Lists an import's rows when its page links here (?batch__id__exact=N)."""

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "batch__id__exact" or super().lookup_allowed(lookup, value, request)


class ByMemberCodeMixin:
    """Searched by a whole customer code (search_fields "=member__external_id", any
    case): the member is found first, then its rows by the member's id, which PostgreSQL
    plans knowing that member's share of the table. Joined to the members instead, the
    list was planned for a member of average size and sorted every row of a card with a
    million entries (1.8 s a page; 70 ms now)."""

    def get_search_results(self, request, queryset, search_term):
        code = search_term.strip()
        if not code or len(code.split()) > 1 or "\x00" in code:
            return super().get_search_results(request, queryset, search_term)
        members = Member.objects.filter(external_id__iexact=code).values_list("pk", flat=True)
        return queryset.filter(member_id__in=list(members)), False


@admin.register(Transaction)
class TransactionAdmin(
    ByBatchMixin, ByMemberCodeMixin, ReadOnlyAdminMixin, ImportExportMixin, admin.ModelAdmin
):
    """Transactions come from channels and imports through the services, never by hand.
    Import: django-import-export's upload, preview and confirm, in front of
    points.services.import_transactions."""

    resource_classes = [TransactionResource]
    formats = [base_formats.CSV]
    to_encoding = SPREADSHEET_ENCODING
    import_formats = [TransactionCSV]  # read by the command's reader: same lines, no crash
    from_encoding = "utf-8-sig"
    import_form_class = TransactionImportForm
    import_template_name = "admin/points/transaction/import.html"
    skip_admin_log = True  # the import writes its own rows, not the library's
    tmp_storage_class = PendingUploads  # private, shared by the web processes, swept

    def get_confirm_form_initial(self, request, import_form):
        """The confirm form names the uploaded file signed for this user: the client
        cannot make the server read (and then delete) a file it did not upload."""
        initial = super().get_confirm_form_initial(request, import_form)
        if initial:
            initial["import_file_name"] = signing.dumps(
                initial["import_file_name"], salt=_upload_salt(request)
            )
        return initial

    @method_decorator(require_POST)
    def process_import(self, request, **kwargs):
        """Confirm: the file this user uploaded, imported once. The file is claimed by a
        rename before it is read, so a second confirm, even at the same moment, finds
        it gone and says so. A confirm that fails (the database or the file store out
        of reach) gives the file back, for the operator to confirm again: what it
        imported, if anything, the same file imports again as skipped (P8)."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        try:
            name = signing.loads(
                request.POST.get("import_file_name", ""),
                salt=_upload_salt(request),
                max_age=PENDING_KEPT_SECONDS,
            )
        except signing.BadSignature:
            raise PermissionDenied("This confirmation does not name a file you uploaded.") from None
        uploaded = self.get_tmp_storage_class()(name=name, **self.get_tmp_storage_class_kwargs())
        claimed = f"{uploaded.get_full_path()}.confirmed"
        try:
            os.rename(uploaded.get_full_path(), claimed)
        except FileNotFoundError:
            self.message_user(
                request,
                "This file was already imported: nothing was imported twice.",
                messages.WARNING,
            )
            return redirect("admin:points_transaction_changelist")
        request.POST = request.POST.copy()
        request.POST["import_file_name"] = claimed
        try:
            answer = super().process_import(request, **kwargs)
        except Exception:
            if Path(claimed).exists():
                os.rename(claimed, uploaded.get_full_path())
            raise
        Path(claimed).unlink(missing_ok=True)  # the library removes it, unless it failed
        return answer

    def process_result(self, result, request):
        """After the confirm: a file that became wrong since its preview (a till returned
        the same purchase meanwhile, say) imported nothing; the operator reads why."""
        errors = result.report.errors
        if not errors:
            return super().process_result(result, request)
        shown = "; ".join(str(error) for error in errors[:5])
        more = f" (and {len(errors) - 5:,} more)" if len(errors) > 5 else ""
        self.message_user(
            request,
            f"Nothing was imported: since the preview, {len(errors):,} row"
            f"{pluralize(len(errors))} became wrong: {shown}{more}. Upload the file again "
            "to see every row.",
            messages.ERROR,
        )
        return redirect("admin:points_transaction_import")

    def add_success_message(self, result, request):
        report = result.report
        summary = (
            f"Import finished: {report.new:,} new, {report.skipped:,} skipped; "
            f"{report.points_moved(dry_run=False)}; "
            f"{counted(report.tier_changes, 'member')} changed tier."
        )
        messages.success(request, summary)
        # One row in the admin's history for the whole file, naming who imported it.
        LogEntry.objects.create(
            user_id=request.user.pk,
            content_type=ContentType.objects.get_for_model(Transaction),
            object_repr="Transactions import",
            action_flag=ADDITION,
            change_message=summary,
        )

    list_display = [
        "external_id",
        "member",
        "kind",
        "amount_shown",
        "occurred_at",
        "channel",
        "store",
    ]
    amount_shown = with_separators("amount", "Amount")
    list_select_related = ["member"]
    # No channel filter: a channel few transactions come through (files, staff) was
    # looked for through every transaction (0.3 s at 2,000,000, growing with them). An
    # import's transactions are listed from its page.
    list_filter = ["kind"]
    # A whole customer code (the member search's index); a whole transaction id is
    # looked up first (get_search_results).
    search_fields = ["=member__external_id"]
    search_help_text = "A whole transaction id as sent (case matters), or a whole customer code."
    show_full_result_count = False
    paginator = CappedPaginator
    # Newest recorded first, as the ledger list: sorting millions of rows by time on
    # every page is what the primary key's order avoids (a member's own transactions,
    # by time, are on the member page).
    ordering = ["-pk"]
    sortable_by = []
    inlines = [LedgerEntryInline]

    def get_search_results(self, request, queryset, search_term):
        """A transaction id finds its transaction by the unique index, as sent; anything
        else is a customer code. (Both in one case-insensitive search read every
        transaction: half a second at 400,000, seconds at millions.)"""
        term = search_term.strip()
        if term and (found := queryset.filter(external_id=term)).exists():
            return found, False
        return super().get_search_results(request, queryset, search_term)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ByBatchMixin, ByMemberCodeMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    # Recorded first, the list's order (an import's entries are often dated days before
    # they were recorded); its definition and when it becomes available are on its own
    # page (the reason says why, within a laptop's width).
    list_display = [
        "recorded",
        "member",
        "kind",
        "points_shown",
        "issued_at",
        "transaction",
        "by",
        "reason",
    ]
    list_select_related = ["member", "definition", "transaction", "created_by"]
    points_shown = with_separators("points", "Points")
    list_filter = ["kind"]
    search_fields = ["=member__external_id"]
    show_full_result_count = False
    paginator = CappedPaginator
    # Newest written first: the primary key's order, the one a list of millions can
    # page through without sorting (a member's own entries are on the member page).
    ordering = ["-pk"]
    sortable_by = []

    @admin.display(description="Recorded")
    def recorded(self, entry):
        return date_format(timezone.localtime(entry.created_at), "DATETIME_FORMAT")

    @admin.display(description="By")
    def by(self, entry):
        """The staff user or API key, or the import that wrote it."""
        if entry.created_by_id:
            return entry.created_by
        return f"Import\u00a0{entry.batch_id}" if entry.batch_id else "-"


class ExpiryPolicyForm(forms.ModelForm):
    class Meta:
        model = ExpiryPolicy
        fields = ["cycle", "starts_on", "reminder_days"]

    def clean(self):
        data = super().clean()
        # E1: switching a cycle on starts it today, also switching it back on: the start
        # the form shows is the one it had, kept only if the marketer types another.
        never = ExpiryPolicy.Cycle.NEVER
        switched_on = self.initial.get("cycle") == never and data.get("cycle", never) != never
        if switched_on and "starts_on" not in self.changed_data:
            data["starts_on"] = None  # the model's clean() sets today
        return data

    def _post_clean(self):
        super()._post_clean()  # the model's clean() has set starts_on (E1)
        policy = self.instance
        if self.errors or not {"cycle", "starts_on"} & set(self.changed_data):
            return
        now = timezone.now()
        try:  # E3: a cutoff passed under the saved policy is taken by its run
            refuse_until_expiry_ran("change the cycle or its start", now=now)
        except ValidationError as waiting:
            self.add_error(None, waiting)
            return
        # E1: switching on, or moving the start back, never expires points at past
        # cutoffs (the job would catch up on every one not yet processed).
        missed = unprocessed_cutoffs(policy, now)
        if missed:
            self.add_error(
                "starts_on",
                f"From {_day(policy.starts_on)} the {policy.cycle} cycle has "
                f"{len(missed):,} past cutoff{pluralize(len(missed))} never processed (the "
                f"last on {_day(missed[-1])}): the next run would expire points at "
                f"{'them' if len(missed) > 1 else 'it'}. Choose today or a later date.",
            )


def _day(day) -> str:
    return f"{day.day} {day:%B %Y}"


@admin.register(ExpiryPolicy)
class ExpiryPolicyAdmin(ConfirmedPolicyAdmin):
    """E1: a marketer switches expiry on and sets its cycle, seeing first what the next
    cutoff would take."""

    form = ExpiryPolicyForm
    change_form_template = "admin/points/expirypolicy/change_form.html"
    confirm_template = "admin/points/expirypolicy/confirm.html"

    def needs_confirmation(self, policy, saved) -> bool:
        # Switching off, or a change that leaves the next cutoff and the reminder day
        # where they were, takes nothing more: saved at once.
        today = timezone.localdate()
        effect = _effect(policy, today)
        return effect[0] is not None and effect != _effect(saved, today)

    def impact(self, request, policy, saved) -> dict:
        today = timezone.localdate()
        return {"stake": expiry_impact(policy, today), "today": today}

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        remind_once_committed()  # E4: the reminder day may have come, its run be over

    def construct_change_message(self, request, form, formsets, add=False):
        """The history names every field changed: switching a cycle on also sets its
        start to today (E1, ExpiryPolicy.clean), which the form did not send."""
        message = super().construct_change_message(request, form, formsets, add)
        if not add and form.instance.starts_on != form.initial.get("starts_on"):
            label = str(form.fields["starts_on"].label)
            for part in message:
                fields = part.get("changed", {}).get("fields", [])
                if label not in fields:
                    fields.append(label)
        return message

    def get_urls(self):
        preview = path(
            "preview/",
            self.admin_site.admin_view(self.preview_view),
            name="points_expirypolicy_preview",
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request):
        """The marketer's dry run: the next cutoff, what is at stake by tier, and who."""
        if not (self.has_view_permission(request) and request.user.has_perm("members.view_member")):
            raise PermissionDenied  # it lists members: both the policy's and the members' view
        plan = programme()
        policy, cutoff = plan.expiry, coming_cutoff(plan, timezone.now())
        kept = kept_preview(cutoff, plan) if cutoff else {"value": {"by_tier": [], "largest": []}}
        by_tier, largest = kept["value"]["by_tier"], kept["value"]["largest"]
        totals = stake_totals(by_tier)
        page = Paginator(largest, 50).get_page(request.GET.get("page")) if cutoff else None
        if page:
            page.object_list = with_members(page.object_list)
        skipped_count, skipped = expiry_skipped(cutoff, limit=50) if cutoff else (0, [])
        context = {
            "skipped_count": skipped_count,
            "skipped": skipped,
            **self.admin_site.each_context(request),
            "title": "Expiry preview",
            "opts": self.model._meta,
            "policy": policy,
            "cutoff": cutoff,
            "as_of": kept.get("as_of"),
            "by_tier": by_tier,
            "total_members": totals["members"],
            "total_points": totals["points"],
            "page": page,
        }
        return TemplateResponse(request, "admin/points/expirypolicy/preview.html", context)


def _effect(policy, today):
    """What an expiry policy does next: its cutoff and the day members are told."""
    cutoff = next_cutoff(policy, today)
    return cutoff, cutoff and reminder_day(policy, cutoff, today)


@admin.register(ExpiryRun)
class ExpiryRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["cutoff", "processed_at", "members_shown", "points_shown"]
    members_shown = with_separators("members", "Members")
    points_shown = with_separators("points", "Points")


from points import goodwill_admin  # noqa: E402, F401 - registers limits and requests
