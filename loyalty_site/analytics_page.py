"""The CX Manager's programme analytics: tiers over time, outstanding points and what
they are worth, earn and burn per month (points.analytics), each chart downloadable
as CSV. For marketers: the permission points.view_analytics."""

import csv

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import escape
from django.utils.safestring import mark_safe

from core.exports import escape_formula
from points import analytics
from tiers.selectors import Ranking

PERMISSION = "points.view_analytics"


def charts() -> tuple:
    """(the last day taken, its liability, the charts), or (None, None, []) before the
    first snapshot."""
    last = analytics.last_day()
    if last is None:
        return None, None, []
    return (
        last,
        analytics.liability(last),
        [
            analytics.tiers_over_time(Ranking(), last),
            analytics.outstanding_over_time(last),
            analytics.flows_by_month(last),
        ],
    )


def analytics_view(site, request):
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    last, liability, shown = charts()
    context = {
        **site.each_context(request),
        "title": "Programme analytics",
        "time_zone": settings.TIME_ZONE,
        "last": last,
        "liability": liability,
        "charts": [(chart, table_body(chart)) for chart in shown],
        "data": {
            chart.name: {"x": [row[0] for row in chart.rows], "series": chart.series()}
            for chart in shown
        },
    }
    return TemplateResponse(request, "admin/analytics.html", context)


def table_body(chart) -> str:
    """The chart's rows as the table under it (hundreds of rows: joined here, at a
    fraction of what the template engine takes for each cell)."""
    return mark_safe(  # every cell is escaped
        "".join(
            f"<tr><td>{escape(day)}</td>"
            + "".join(f"<td>{escape(f'{value:,}')}</td>" for value in values)
            + "</tr>"
            for day, *values in chart.rows
        )
    )


def chart_csv_view(site, request, name: str):
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    found = [chart for chart in charts()[2] if chart.name == name]
    if not found:
        raise Http404("No such chart.")
    chart = found[0]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{chart.name}.csv"'
    writer = csv.writer(response)
    writer.writerow([escape_formula(column) for column in chart.columns])
    for row in chart.rows:
        writer.writerow([escape_formula(str(cell)) for cell in row])
    return response
