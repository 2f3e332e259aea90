"""The CX Manager's imports: upload a file of any size, follow its check, see its
errors or what it would do, confirm, follow the import; the list of every batch.
The work is points.services.batches'; these views only show it and pass clicks on."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from core.models import ImportBatch
from core.paginator import CappedPaginator
from points.csv_rows import COLUMNS, GRANT_COLUMNS
from points.member_rows import COLUMNS as MEMBER_COLUMNS
from points.services import batches

Kind = ImportBatch.Kind
# The columns of each kind of file, in the README's order.
HEADER = {Kind.TRANSACTIONS: COLUMNS, Kind.GRANTS: GRANT_COLUMNS, Kind.MEMBERS: MEMBER_COLUMNS}
# What each kind of file asks of the user who uploads or confirms it.
PERMISSION = {
    Kind.TRANSACTIONS: "points.add_transaction",
    Kind.GRANTS: "points.import_grants",
    Kind.MEMBERS: "members.add_member",
}


def allowed_kinds(user) -> list[tuple[str, str]]:
    doors = batches.kinds()
    return [(k, label) for k, label in Kind.choices if k in doors and user.has_perm(PERMISSION[k])]


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label="The file holds")
    file = forms.FileField(help_text="CSV, UTF-8, with its header row (see the README).")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        kinds = allowed_kinds(user)
        self.fields["kind"].choices = kinds
        # The header each kind of file starts with, for those who never read the README.
        headers = format_html_join(
            "; ", "{}: <code>{}</code>", ((label, ",".join(HEADER[k])) for k, label in kinds)
        )
        self.fields["file"].help_text = format_html("CSV, UTF-8, with its header row. {}", headers)

    def clean_file(self):
        file = self.cleaned_data["file"]
        if file.size > settings.IMPORT_MAX_BYTES:
            raise ValidationError(
                f"{file.name} is {filesizeformat(file.size)}: the most a file may be is "
                f"{filesizeformat(settings.IMPORT_MAX_BYTES)} (IMPORT_MAX_BYTES)."
            )
        if not file.size:
            raise ValidationError(f"{file.name} is empty.")
        return file


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = [
        "file_name",
        "kind",
        "uploaded_by",
        "uploaded_at",
        "confirmed_by",
        "status",
        "rows",
        "new",
        "bad_rows",
        "duration",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["uploaded_by", "imported_by"]
    search_fields = ["file_name"]
    paginator = CappedPaginator
    show_full_result_count = False
    change_list_template = "admin/core/importbatch/change_list.html"

    @admin.display(description="Confirmed by", ordering="imported_by")
    def confirmed_by(self, batch):
        return batch.imported_by or ""  # rules.md, "Importing": who uploaded and confirmed

    def has_view_permission(self, request, obj=None):
        """Every import for those given "Can view import"; those of their kinds for
        whoever may import a kind of file, so that the list is theirs too (the
        "Imports" link of an import's page, docs/rules.md "Importing")."""
        if super().has_view_permission(request, obj):
            return True
        if obj is None:
            return bool(allowed_kinds(request.user))
        return request.user.has_perm(PERMISSION[obj.kind])

    def has_module_permission(self, request):
        return super().has_module_permission(request) or bool(allowed_kinds(request.user))

    def get_queryset(self, request):
        batches = super().get_queryset(request)
        if super().has_view_permission(request):
            return batches
        return batches.filter(kind__in=[kind for kind, _ in allowed_kinds(request.user)])

    def has_add_permission(self, request):
        return False  # through the upload page

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Rows with errors", ordering="error_count")
    def bad_rows(self, batch):
        if batch.status == ImportBatch.Status.INVALID and not batch.error_count:
            return "the header"  # no row was read
        return batch.error_count

    @admin.display(description="Duration")
    def duration(self, batch):
        if not (batch.finished_at and batch.started_at):
            return "-"
        return f"{(batch.finished_at - batch.started_at).total_seconds():.1f} s"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("upload/", view(self.upload_view), name="core_importbatch_upload"),
            path("<path:object_id>/state/", view(self.state_view), name="core_importbatch_state"),
            path(
                "<path:object_id>/confirm/",
                view(require_POST(self.confirm_view)),
                name="core_importbatch_confirm",
            ),
            path(
                "<path:object_id>/run-again/",
                view(require_POST(self.run_again_view)),
                name="core_importbatch_run_again",
            ),
            path(
                "<path:object_id>/errors.csv",
                view(self.errors_view),
                name="core_importbatch_errors",
            ),
            *super().get_urls(),
        ]

    def _batch(self, request, object_id) -> ImportBatch:
        """The batch, for those who may see every import or import its kind: whoever
        may upload a file may follow and confirm it (docs/rules.md, "Importing").
        Another kind's import is refused, not "no such import"."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:  # any kind's, not get_queryset's
            batch = ImportBatch.objects.get(pk=unquote(object_id))
        except (ImportBatch.DoesNotExist, ValueError, ValidationError):  # "abc" too
            raise Http404("No such import.") from None
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        return batch

    def _may_run(self, request, batch) -> None:
        if not request.user.has_perm(PERMISSION[batch.kind]):
            raise PermissionDenied

    def upload_view(self, request):
        if not allowed_kinds(request.user):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            batch = batches.upload(
                kind=form.cleaned_data["kind"], file=form.cleaned_data["file"], by=request.user
            )
            self.log_addition(request, batch, "Uploaded")
            return redirect(reverse("admin:core_importbatch_change", args=[batch.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Upload a file to import",
            "form": form,
            "max_size": filesizeformat(settings.IMPORT_MAX_BYTES),
        }
        return TemplateResponse(request, "admin/core/importbatch/upload.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self._batch(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": str(batch),
            "batch": batch,
            "state": batches.state(batch),
            "may_run": request.user.has_perm(PERMISSION[batch.kind]),
            "cannot_run": _cannot_run(batch, request.user),
            "links": self._links(batch),
            "took": self.duration(batch),
            # The page lists the first messages: a row can have several.
            "errors_cut": len(batch.first_errors) >= batches.SHOWN_ERRORS,
            "kept_days": settings.IMPORT_FILE_DAYS,
        }
        return TemplateResponse(request, "admin/core/importbatch/batch.html", context)

    def state_view(self, request, object_id):
        """What the page polls while a step runs."""
        return JsonResponse(batches.state(self._batch(request, object_id)))

    def confirm_view(self, request, object_id):
        batch = self._batch(request, object_id)
        self._may_run(request, batch)
        try:
            batches.confirm(batch=batch, by=request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.log_change(request, batch, "Confirmed")
        return redirect(reverse("admin:core_importbatch_change", args=[batch.pk]))

    def run_again_view(self, request, object_id):
        batch = self._batch(request, object_id)
        self._may_run(request, batch)
        try:
            batches.run_again(batch=batch, by=request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.log_change(request, batch, "Run again")
        return redirect(reverse("admin:core_importbatch_change", args=[batch.pk]))

    def errors_view(self, request, object_id):
        batch = self._batch(request, object_id)
        if not batch.errors_file:
            raise Http404("This import has no errors.")
        name = f"{batch.file_name.rsplit('.', 1)[0]}-errors.csv"
        try:
            kept = batch.errors_file.open("rb")
        except FileNotFoundError:
            self.message_user(
                request,
                "The list of bad rows is no longer where it was stored (moved or deleted "
                "outside the CX Manager): the page lists the first of them; upload the file "
                "again for all.",
                messages.ERROR,
            )
            return redirect(reverse("admin:core_importbatch_change", args=[batch.pk]))
        return FileResponse(kept, as_attachment=True, filename=name)

    def _links(self, batch) -> list:
        """Where its rows are, once imported."""
        if batch.status != ImportBatch.Status.DONE:
            return []
        links = [
            format_html(
                '<a href="{}?batch__id__exact={}">Its transactions</a>',
                reverse("admin:points_transaction_changelist"),
                batch.pk,
            ),
            format_html(
                '<a href="{}?batch__id__exact={}">Its ledger entries</a>',
                reverse("admin:points_ledgerentry_changelist"),
                batch.pk,
            ),
        ]
        # Grants and opening balances are ledger entries alone: no transaction names them.
        return links if batch.kind == Kind.TRANSACTIONS else links[1:]


def _cannot_run(batch, user) -> str:
    """Why a checked or failed batch cannot be confirmed or run again by `user`, said in
    place of its button; "" when it can."""
    try:
        batches.check_runnable(batch, by=user)
    except ValidationError as refused:
        return " ".join(refused.messages)
    return ""
