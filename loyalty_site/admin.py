from django.contrib import admin
from django.db.models import Count, Q

from loyalty_site.models import JobRun
from members.admin import ReadOnlyAdminMixin


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
