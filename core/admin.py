"""Admin building blocks shared by the apps, and the admin of core's own job runs."""

from django.contrib import admin
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.urls import reverse

from core.models import JobRun


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
        row = self.model.current()
        opts = row._meta
        return redirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The chunked runs of expiry and degradation, for operations: which finished, and
    how far an unfinished one got."""

    list_display = ["job", "key", "started_at", "finished_at", "chunks_done"]
    list_filter = ["job"]
    ordering = ["-started_at"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                chunk_count=Count("chunks"), done=Count("chunks", filter=~Q(chunks__done_at=None))
            )
        )

    @admin.display(description="Chunks done")
    def chunks_done(self, run):
        return f"{run.done} of {run.chunk_count}"
