"""The periodic tasks' admin pages (django-celery-beat's, in the CX Manager for
superusers) say what is wrong with input the library's own checks let through to a 500
(found by an audit fuzzing every admin form)."""

import pytest
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

pytestmark = pytest.mark.django_db

CRONTAB = {
    "minute": "0",
    "hour": "3",
    "day_of_month": "*",
    "month_of_year": "*",
    "day_of_week": "*",
    "timezone": "Europe/Madrid",
}


@pytest.mark.parametrize("field", ["minute", "hour", "day_of_month", "month_of_year"])
def test_a_crontab_field_celery_cannot_read_is_said_on_the_field(admin_client, field):
    before = CrontabSchedule.objects.count()
    page = admin_client.post(
        reverse("admin:django_celery_beat_crontabschedule_add"), {**CRONTAB, field: "-1"}
    )
    assert page.status_code == 200
    assert page.context["adminform"].form.errors[field][0].startswith("Celery cannot read this")
    assert CrontabSchedule.objects.count() == before


def periodic_task(**fields) -> dict:
    schedule = CrontabSchedule.objects.create(
        **{k: v for k, v in CRONTAB.items() if k != "timezone"}
    )
    return {
        "name": "Nightly check",
        "regtask": "",
        "task": "points.tasks.expire_points_task",
        "crontab": schedule.pk,
        "args": "[]",
        "kwargs": "{}",
        "headers": "{}",
        "enabled": "on",
        "priority": "",
        "queue": "",
        "exchange": "",
        "routing_key": "",
        "expire_seconds": "",
        **fields,
    }


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"task": "\x00"}, "task"),
        ({"task": "x" * 10_000}, "task"),
        ({"task": "", "regtask": "\x00"}, "regtask"),
    ],
)
def test_a_task_name_the_database_cannot_keep_is_said_on_its_field(admin_client, fields, field):
    before = PeriodicTask.objects.count()
    page = admin_client.post(
        reverse("admin:django_celery_beat_periodictask_add"), periodic_task(**fields)
    )
    assert page.status_code == 200 and field in page.context["adminform"].form.errors
    assert PeriodicTask.objects.count() == before


def test_a_task_with_empty_headers_is_saved_with_empty_json_headers(admin_client):
    page = admin_client.post(
        reverse("admin:django_celery_beat_periodictask_add"), periodic_task(headers="")
    )
    assert page.status_code == 302
    assert PeriodicTask.objects.get(name="Nightly check").headers == "{}"
