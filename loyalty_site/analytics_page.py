"""The CX Manager's programme analytics: tiers over time, outstanding points and what
they are worth, earn and burn per month (points.analytics), each chart downloadable
as CSV. For marketers: the permission points.view_analytics."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import escape
from django.utils.safestring import mark_safe

from core.exports import escape_formula, spreadsheet_writer
from points import analytics

PERMISSION = "points.view_analytics"


def analytics_view(site, request):
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    latest = analytics.latest()
    shown = [chart(latest.day) for chart in analytics.CHARTS.values()] if latest else []
    context = {
        **site.each_context(request),
        "title": "Programme analytics",
        "time_zone": settings.TIME_ZONE,
        "last": latest and latest.day,
        "liability": latest and analytics.liability(latest),
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
    latest = analytics.latest()
    if name not in analytics.CHARTS or latest is None:
        raise Http404("No such chart.")
    chart = analytics.CHARTS[name](latest.day)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{chart.name}.csv"'
    writer = spreadsheet_writer(response)
    writer.writerow([escape_formula(column) for column in chart.columns])
    for row in chart.rows:
        writer.writerow([escape_formula(str(cell)) for cell in row])
    return response
