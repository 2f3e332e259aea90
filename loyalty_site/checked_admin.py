"""What every page of the CX Manager checks before Django's admin reads the database
with it: the ids an action is posted with, an object's id in a URL, the filters of a
list, also when the list is exported, and the column a list is sorted by. Django hands
them to the database as they come, and an id that is no id ("abc", twenty digits, a
NUL, which PostgreSQL refuses in text) fails there: a 500 instead of a message. And
the search box's term, which looks for ids as every door reads them (core.ids).
CXManagerSite mixes this into every admin it registers, the libraries' ones included."""

import unicodedata

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ORDER_VAR, ChangeList
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.db.models import F, OrderBy
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.text import capfirst

from core.ids import canonical_id


def _spellings(term: str) -> list[str]:
    """The term composed (as ids are kept), as typed, and decomposed: one for ASCII."""
    return list(dict.fromkeys([canonical_id(term), term, unicodedata.normalize("NFD", term)]))


class CheckedInput:
    def response_action(self, request, queryset):
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(is_id(self.model, value) for value in selected):
            self.message_user(
                request,
                "The selection holds rows that do not exist: select them in the list again.",
                messages.WARNING,
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    def get_object(self, request, object_id, from_field=None):
        if from_field is None and not is_id(self.model, object_id):
            return None  # Django's "doesn't exist. Perhaps it was deleted?"
        return super().get_object(request, object_id, from_field)

    def get_search_results(self, request, queryset, search_term):
        """Ids read as every door reads them (core.ids): a customer code or a
        transaction's id typed or pasted with an accent decomposed ("Café-1" as e and a
        combining accent, from a Mac) finds what is kept composed, in every list and in
        the member picker. What is kept as it was typed (names, e-mails, and ids recorded
        decomposed before the rule) is found by the term as typed, or decomposed: a name
        typed on a Mac is found by its usual spelling."""
        found, may_have_duplicates = queryset.none(), False
        for term in _spellings(search_term):
            rows, more = super().get_search_results(request, queryset, term)
            found, may_have_duplicates = found | rows, may_have_duplicates or more
        return found, may_have_duplicates

    def changelist_view(self, request, extra_context=None):
        """Every list is headed by what it lists ("Members"), not Django's "Select member
        to change": staff open lists to find and read, as often as to change."""
        context = {"title": capfirst(self.opts.verbose_name_plural), **(extra_context or {})}
        return super().changelist_view(request, context)

    def get_changelist(self, request, **kwargs):
        own = super().get_changelist(request, **kwargs)  # a list's own (the members')
        return own if issubclass(own, OfferedSortsOnly) else OfferedSortsOnly

    def get_changelist_instance(self, request):
        """Filters Django cannot place ("?name=%00", "?user__gte=" and twenty digits)
        give the list's own "?e=1" page, as a lookup it does not know does."""
        _refuse_nul(request)
        try:
            changelist = super().get_changelist_instance(request)  # counts the rows
            len(changelist.result_list)  # the page's rows, read once, kept for the page
        except (ValueError, OverflowError, DatabaseError) as error:
            raise IncorrectLookupParameters(error) from None
        return changelist

    # The export page of a list (django-import-export's ExportMixin: members,
    # transactions) exports the list as filtered, from the list's query string.

    def export_action(self, request):
        """A filter the list cannot place ("?format=csv", "?amount__gte=abc") gives the
        list's own "?e=1" page, as on the list."""
        try:
            return super().export_action(request)
        except IncorrectLookupParameters:
            opts = self.opts
            changelist = reverse(
                f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
            )
            return HttpResponseRedirect(f"{changelist}?{ERROR_FLAG}=1")

    def get_export_queryset(self, request):
        _refuse_nul(request)
        try:
            rows = super().get_export_queryset(request)
            rows.exists()  # what the database refuses is refused here, not in the file
        except (ValueError, OverflowError, DatabaseError) as error:
            raise IncorrectLookupParameters(error) from None
        return rows

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", CheckedMultipleChoiceField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class CheckedMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Rows chosen in a form (a campaign's tiers): a value that is no id is "Select a
    valid choice", as a row that does not exist is, before the database reads it (SQLite
    cannot hold twenty digits; a choice of one row is checked so by Django already)."""

    def _check_values(self, value):
        for choice in value if self.to_field_name is None else ():
            if not is_id(self.queryset.model, choice):
                raise ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": choice},
                )
        return super()._check_values(value)


class OfferedSortsOnly(ChangeList):
    """A list sorts only by the columns it offers (`sortable_by`): Django's own sorts by
    any column with an ordering named in `?o=`, so a bookmark or a hand-typed address
    sorted a million members by a column no index answers (seconds a page). Another
    column is skipped, as one with no ordering is."""

    def get_ordering_field(self, field_name):
        if field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)

    def get_ordering(self, request, queryset):
        """The id that makes a sorted list's order total runs the way of the column
        chosen first: the list's own order (the admin's `-pk`) is added after that
        column whichever way it runs, so that ties came newest first under an ascending
        column and an index on (column, id) answered only one way. The members who tie
        at 0 lifetime points (hundreds of thousands: those who never bought) were all
        sorted before the first page of "fewest first", 0.5 s per 100,000 of them. The
        list's own order, with no column chosen, is left as its admin says."""
        ordering = super().get_ordering(request, queryset)
        if ORDER_VAR not in self.params or not ordering or self._is_pk(ordering[0]):
            return ordering
        for n, part in enumerate(ordering):
            if self._is_pk(part):
                # What follows the id orders nothing.
                return [*ordering[:n], "-pk" if _descending(ordering[0]) else "pk"]
        return ordering

    def _is_pk(self, part) -> bool:
        if isinstance(part, OrderBy):
            part = part.expression
        name = part.name if isinstance(part, F) else part
        return isinstance(name, str) and name.lstrip("-") in ("pk", self.lookup_opts.pk.name)


def _descending(part) -> bool:
    """Whether a part of an ordering (a name, an F or an OrderBy) runs descending."""
    if isinstance(part, str):
        return part.startswith("-")
    return bool(getattr(part, "descending", False))


def _refuse_nul(request) -> None:
    if any("\x00" in value for values in request.GET.lists() for value in values[1]):
        raise IncorrectLookupParameters("a NUL character")


def is_id(model, value) -> bool:
    pk = model._meta.pk
    if "\x00" in str(value):
        return False
    try:
        pk.run_validators(pk.to_python(value))
    except (ValidationError, ValueError, OverflowError):
        return False
    return True
