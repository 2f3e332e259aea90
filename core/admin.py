"""Admin building blocks shared by the apps, and the admin of core's own job runs."""

import copy
import hashlib
from datetime import datetime, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminSplitDateTime, RelatedFieldWidgetWrapper
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, router, transaction
from django.db.models import Count, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from core.ids import canonical_id
from core.models import JobChunk, JobRun
from core.paginator import CappedPaginator


def chosen_for_action(modeladmin, request, rows, *, limit: int, too_many: str) -> list | None:
    """The rows a list action acts on, as its confirmation page lists them (the page
    sends back their ids, not "all of the list", which may have grown since). None,
    said in words (`too_many`), above `limit`: a page that long helps nobody, and "select
    all" on a list of a million would build it."""
    chosen = list(rows[: limit + 1])
    if len(chosen) > limit:
        modeladmin.message_user(request, too_many, messages.ERROR)
        return None
    return chosen


def action_confirmation(modeladmin, request, template: str, chosen, *, title: str, **context):
    """A list action's confirmation page naming the `chosen` rows, whose form sends
    back exactly those (admin/includes/confirm_selected.html, or a form of its own)."""
    return TemplateResponse(
        request,
        template,
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "opts": modeladmin.opts,
            "selected": [row.pk for row in chosen],
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            **context,
        },
    )


def with_separators(field: str, description: str):
    """A list column of a whole number as staff read it (1,000), sorted by the field."""

    @admin.display(description=description, ordering=field)
    def shown(self, obj):
        value = getattr(obj, field)
        return self.get_empty_value_display() if value is None else intcomma(value)

    return shown


class IdField(forms.CharField):
    """A form field taking a customer code (or another id): read as every door reads
    ids (core.ids), so that "Café-1" typed on a Mac, e and a combining accent, is the
    code kept composed."""

    def to_python(self, value):
        return canonical_id(super().to_python(value))


class ChangedOnPageForm(forms.ModelForm):
    """A change page's form whose `changed_data` is what its user changed on the page:
    each field comes back with the value the page was opened with (Django's hidden
    initial; a date and time in two inputs, `initial-<name>_0` and `_1`), not compared
    with what others saved since. A form sent without them (made by hand) is compared
    with the row as it is now. Files are changed by an upload only.

    The row is checked as the save writes it (WritesWhatChangedAdmin): the fields changed
    on the page over the row as it is now. A check that fails says which values others
    saved while the page was open ("Changed while this page was open: ...")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            return
        # Sent from the page: with the values it was opened with, but for a list shown
        # empty (no tier ticked: every tier), of which a browser sends nothing.
        from_page = not self.is_bound or any(
            not field.hidden_widget().value_omitted_from_data(
                self.data, self.files, self.add_initial_prefix(name)
            )
            for name, field in self.fields.items()
        )
        for field in self.fields.values():
            field.show_hidden_initial = from_page and not isinstance(field, forms.FileField)

    def _post_clean(self):
        if self.instance.pk is None:
            return super()._post_clean()
        opts = self.instance._meta
        saved = {field.name for field in [*opts.concrete_fields, *opts.many_to_many]}
        unchanged = [name for name in self.cleaned_data if name not in self.changed_data]
        for name in unchanged:
            if name in saved and not isinstance(self.fields[name], forms.FileField):
                self.cleaned_data[name] = self._saved(name)
        super()._post_clean()
        if self._errors and (moved := self._changed_meanwhile(unchanged)):
            self.add_error(None, f"Changed while this page was open: {', '.join(moved)}.")

    def _changed_meanwhile(self, unchanged) -> list[str]:
        """Each field this user left as the page showed it whose row has changed since,
        with its value now: "Available until (now 10 Mar 2026 00:00)"."""
        moved = []
        for name in unchanged:
            field = self.fields[name]
            if not field.show_hidden_initial:
                continue
            shown = self._widget_data_value(field.hidden_widget(), self.add_initial_prefix(name))
            # A browser sends a field's line breaks as CR LF: "Free delivery\nBirthday
            # gift" kept with LF came back the same, not changed.
            if field.has_changed(_lf(self.get_initial_for_field(field, name)), _lf(shown)):
                moved.append(f"{self[name].label} (now {_shown_value(self._saved(name))})")
        return moved

    def _saved(self, name: str):
        """The field's value in the row as it is now; a list's objects (a campaign's
        tiers) as a list, which save_m2m sets again."""
        value = getattr(self.instance, name)
        many = {field.name for field in self.instance._meta.many_to_many}
        return list(value.all()) if name in many else value


def _lf(value):
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def _shown_value(value) -> str:
    if value is None or value == "" or value == []:
        return "empty"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, datetime):
        return f"{timezone.localtime(value):%-d %b %Y %H:%M}"
    return str(value)


class WritesWhatChangedAdmin(admin.ModelAdmin):
    """A change page writes only the fields its user changed (ChangedOnPageForm): a page
    opened before another marketer saved does not write their change back."""

    form = ChangedOnPageForm

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        obj.save(update_fields=self.changed_columns(obj, form))

    def changed_columns(self, obj, form) -> list[str]:
        """The columns the page changed: what its save writes."""
        columns = {field.name for field in obj._meta.concrete_fields}
        return [name for name in form.changed_data if name in columns]


class ReadOnlyAdminMixin:
    """History that staff may read but never add, change or delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SingletonAdmin(admin.ModelAdmin):
    """A policy of one row: the list goes straight to it; no add, no delete."""

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied  # before current(), which may write the row
        row = self.model.current()
        opts = row._meta
        return redirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))


CONFIRM_POLICY = "_confirm_policy"


class ConfirmedPolicyAdmin(SingletonAdmin):
    """A policy whose change is shown with its impact before it is saved: the posted
    values are validated into an unsaved copy, and when they change who is affected
    (`needs_confirmation`) the marketer sees what they would do (`impact`) and confirms.
    Nothing is saved until then. Only a user who may change the policy sees it; any
    other POST goes on to the admin's own refusal."""

    confirm_template = "admin/policy_confirm.html"

    def needs_confirmation(self, policy, saved) -> bool:
        raise NotImplementedError

    def impact(self, request, policy, saved) -> dict:
        raise NotImplementedError

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method != "POST" or not object_id:
            return super().changeform_view(request, object_id, form_url, extra_context)
        # Locked until saved: of two marketers confirming at once, the second reads the
        # policy the first saved (and is shown its impact again), not the one both saw.
        with transaction.atomic(using=router.db_for_write(self.model)):
            saved = self.get_object(request, unquote(object_id))
            if saved is not None:
                saved = type(saved).objects.select_for_update().get(pk=saved.pk)
            # A confirmation counts only for the policy it was shown against: if someone
            # saved it in between, the impact shown is not the one confirmed.
            confirmed = request.POST.get(CONFIRM_POLICY)
            if saved is not None and confirmed != _fingerprint(saved):
                if self.has_change_permission(request, saved):
                    form_class = self.get_form(request, saved, change=True)
                    # A copy: validating the form writes the posted values into it.
                    form = form_class(request.POST, request.FILES, instance=copy.copy(saved))
                    if form.is_valid() and self.needs_confirmation(form.instance, saved):
                        return self._confirmation(request, form, saved, again=bool(confirmed))
            return super().changeform_view(request, object_id, form_url, extra_context)

    def _confirmation(self, request, form, saved, *, again=False):
        context = {
            **self.admin_site.each_context(request),
            "title": f"Confirm the new {self.opts.verbose_name}",
            "opts": self.opts,
            "original": saved,
            # As they would be saved: the model's clean() may fill a field left empty.
            "changes": [
                (field.label, _shown(saved, name), _shown(form.instance, name))
                for name, field in form.fields.items()
                if _shown(saved, name) != _shown(form.instance, name)
            ],
            "posted": reposted(request, CONFIRM_POLICY),
            "confirm": CONFIRM_POLICY,
            "fingerprint": _fingerprint(saved),
            "changed_meanwhile": again,
            **self.impact(request, form.instance, saved),
        }
        return TemplateResponse(request, self.confirm_template, context)


def reposted(request, confirm: str) -> list[tuple[str, str]]:
    """The posted form's fields, for a confirmation page to send again as hidden inputs
    (its own token and confirmation field aside)."""
    return [
        (name, value)
        for name, values in request.POST.lists()
        if name not in ("csrfmiddlewaretoken", confirm)
        for value in values
    ]


def _fingerprint(policy) -> str:
    """The saved policy's values, as a short token carried by its confirmation."""
    values = repr([field.value_from_object(policy) for field in policy._meta.concrete_fields])
    return hashlib.sha256(values.encode()).hexdigest()[:16]


def _shown(policy, name: str) -> str:
    """A field's value as the form shows it: a choice's label, Yes or No, or empty."""
    field = policy._meta.get_field(name)
    value = field.value_from_object(policy)
    if field.choices:
        return dict(field.flatchoices).get(value, value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return "(empty)" if value in (None, "") else value


# A chunk of a run takes seconds to minutes: none done for this long, and none will be.
STALLED_AFTER = timedelta(minutes=30)


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The chunked runs of expiry and degradation, for operations: which finished, and
    how far an unfinished one got."""

    list_display = ["job", "run_for", "started_at", "finished_at", "chunks_done", "progress"]
    list_filter = ["job"]
    ordering = ["-started_at"]

    # Thousands of runs: no count of them all, pages read by their start
    show_full_result_count = False
    paginator = CappedPaginator

    def get_queryset(self, request):
        # Each run's chunks read by its own index, for the page's runs only: a join of
        # every run with its chunks grew with both (1 s at 30,000 runs).
        chunks = JobChunk.objects.filter(run=OuterRef("pk")).order_by().values("run")
        done = chunks.filter(done_at__isnull=False)
        return (
            super()
            .get_queryset(request)
            .annotate(
                chunk_count=Coalesce(Subquery(chunks.annotate(n=Count("pk")).values("n")), 0),
                done=Coalesce(Subquery(done.annotate(n=Count("pk")).values("n")), 0),
                last_done=Subquery(chunks.annotate(last=Max("done_at")).values("last")),
            )
        )

    @admin.display(description="For", ordering="key")
    def run_for(self, run):
        """What the run is for, as operations read it: an expiry's cutoff (its key is the
        cutoff's day), a degradation's instant (its key, in UTC), in the programme's
        time zone."""
        try:
            moment = datetime.fromisoformat(run.key)
        except ValueError:  # a key of another form: as it is
            return run.key
        if len(run.key) == len("2026-03-31"):
            return f"Cutoff of {moment:%-d %b %Y}"
        return f"As of {timezone.localtime(moment):%-d %b %Y %H:%M}"

    @admin.display(description="Chunks done")
    def chunks_done(self, run):
        return f"{run.done} of {run.chunk_count}"

    @admin.display(description="Progress")
    def progress(self, run):
        """Whether an unfinished run is still moving: a chunk takes seconds to minutes,
        so one with no chunk done for STALLED_AFTER lost its messages (a broker
        restarted without them), and the job's next run finishes it."""
        if run.finished_at:
            return "Finished"
        since = run.last_done or run.started_at
        at = f"{timezone.localtime(since):%-d %b %Y %H:%M}"
        if timezone.now() - since < STALLED_AFTER:
            return f"Running (last chunk done {at})" if run.last_done else "Running"
        return f"Stalled: nothing done since {at}; the job's next run finishes it"


def only_choices(field) -> None:
    """A form field that picks among rows managed on their own page (tiers): no "+",
    pencil or cross beside it. Adding a tier from a campaign's checkboxes saved it and
    requalified every member, and the checkboxes never showed it."""
    widget = field.widget
    if isinstance(widget, RelatedFieldWidgetWrapper):
        widget.can_add_related = widget.can_change_related = False
        widget.can_delete_related = widget.can_view_related = False


class _MomentAsText:
    """A split moment's widget that takes it as text too: an add link's query
    (?starts_at=2027-01-01) gives the form text, where Django's widget (and its hidden
    copy of a field with a default) fails, a 500."""

    def decompress(self, value):
        if isinstance(value, str):
            try:
                value = forms.DateTimeField().clean(value)
            except ValidationError:
                value = None  # not a moment: the form shows the fields empty
        return super().decompress(value)


class LabelledSplitDateTime(_MomentAsText, AdminSplitDateTime):
    """The admin's date and time inputs of one moment, each named by its own label
    ("Date:", "Time:"), which a screen reader reads with it: Django's are bare text."""

    template_name = "cx/split_datetime.html"


class _HiddenMoment(_MomentAsText, forms.SplitHiddenDateTimeWidget):
    pass


class MomentField(forms.SplitDateTimeField):
    hidden_widget = _HiddenMoment


# A ModelAdmin's formfield_overrides: every moment staff type, labelled.
LABELLED_MOMENTS = {
    models.DateTimeField: {"widget": LabelledSplitDateTime, "form_class": MomentField}
}
