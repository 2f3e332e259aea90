from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from celery.schedules import ParseException, crontab
from django import forms
from django.contrib import admin
from django.core.validators import ProhibitNullCharactersValidator
from django.utils import timezone
from django_celery_beat.admin import (
    ClockedScheduleAdmin,
    CrontabScheduleAdmin,
    PeriodicTaskAdmin,
    PeriodicTaskForm,
    TaskChoiceField,
)
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask

from core.admin import LABELLED_MOMENTS, ChangedOnPageForm
from loyalty_site.member_page import MemberAdmin
from members.models import Member
from points.services.expiry import refuse_until_expiry_ran
from tiers.admin import TierAdmin
from tiers.models import Tier

admin.site.register(Member, MemberAdmin)


class TierForm(ChangedOnPageForm):
    def clean_points_expire(self):
        """E3: the run of a passed cutoff reads the tier's exemption. Changed before that
        run, it would let the points due escape, or take those of a tier exempt at the
        cutoff. Checked here: tiers cannot know expiry, which is points'."""
        points_expire = self.cleaned_data["points_expire"]
        if self.instance.pk and "points_expire" in self.changed_data:
            refuse_until_expiry_ran("change a tier's expiry", now=timezone.now())
        return points_expire


admin.site.unregister(Tier)


@admin.register(Tier)
class ExpiryCheckedTierAdmin(TierAdmin):
    form = TierForm


# Third-party admins whose actions name no permission: anyone who may view the list
# would get them. Each now names the permission its change needs.


def _permitted(action, permission: str):
    """The library's action, the same description, needing `permission`."""

    def permitted(model_admin, request, queryset):
        return action(model_admin, request, queryset)

    return admin.action(permissions=[permission], description=action.short_description)(permitted)


admin.site.unregister(PeriodicTask)


class CheckedPeriodicTaskForm(PeriodicTaskForm):
    """The library's form, where input it refused gave a 500: a task name refused on its
    own field (too long, a NUL) made its check fail on the missing name; a NUL in the
    registered task's name reached the database; and empty headers, which the model
    saves as NULL, its column's refusal."""

    regtask = TaskChoiceField(
        label="Task (registered)", required=False, validators=[ProhibitNullCharactersValidator()]
    )

    def clean(self):
        if "task" in self._errors:  # said on its field
            return self.cleaned_data
        return super().clean()

    def clean_headers(self):
        return self.cleaned_data["headers"] or "{}"


@admin.register(PeriodicTask)
class PermittedPeriodicTaskAdmin(PeriodicTaskAdmin):
    form = CheckedPeriodicTaskForm
    formfield_overrides = LABELLED_MOMENTS  # an add link's ?start_time= is read
    # Running a task at once (expiry, degradation) is a change to every member.
    enable_tasks = _permitted(PeriodicTaskAdmin.enable_tasks, "change")
    disable_tasks = _permitted(PeriodicTaskAdmin.disable_tasks, "change")
    toggle_tasks = _permitted(PeriodicTaskAdmin.toggle_tasks, "change")
    run_tasks = _permitted(PeriodicTaskAdmin.run_tasks, "change")


CRON_FIELDS = ["minute", "hour", "day_of_month", "month_of_year", "day_of_week"]


class CheckedCrontabForm(forms.ModelForm):
    """Each field of a crontab as Celery reads it: one it cannot read (-1, 61 minutes) is
    said on its field, not a 500 when the schedule is saved."""

    class Meta:
        model = CrontabSchedule
        fields = [*CRON_FIELDS, "timezone"]

    def clean(self):
        data = super().clean()
        for name in CRON_FIELDS:
            if name in data:
                try:
                    crontab(**{name: data[name]})
                except (ParseException, ValueError) as unread:
                    self.add_error(name, f"Celery cannot read this: {unread}.")
        return data


admin.site.unregister(CrontabSchedule)


@admin.register(CrontabSchedule)
class CheckedCrontabScheduleAdmin(CrontabScheduleAdmin):
    form = CheckedCrontabForm


admin.site.unregister(ClockedSchedule)


@admin.register(ClockedSchedule)
class LabelledClockedScheduleAdmin(ClockedScheduleAdmin):
    formfield_overrides = LABELLED_MOMENTS  # an add link's ?clocked_time= is read


admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class PermittedAccessAttemptAdmin(AccessAttemptAdmin):
    @admin.action(
        permissions=["delete"],
        description=AccessAttemptAdmin.cleanup_expired_attempts.short_description,
    )
    def cleanup_expired_attempts(self, request, queryset):
        # axes sets an attempt's time on the request at a login only: the cool-off
        # counts back from now here.
        request.axes_attempt_time = None
        return super().cleanup_expired_attempts(request, queryset)
