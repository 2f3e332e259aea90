"""Tier status in templates, worded the same on every page: {% load tier_status %}."""

from django import template
from django.utils import timezone

from tiers import selectors

register = template.Library()


@register.filter
def drop_time(when, now=None) -> str:
    """{{ when|drop_time:now }}: "on 5 Dec 2026", or "at tonight's run" when the
    degradation is due today or overdue (tiers.selectors.drop_time)."""
    return selectors.drop_time(when, now or timezone.now())


@register.filter
def times(multiplier) -> str:
    """{{ tier.multiplier|times }}: a multiplier as the product writes it ("1.5", "2",
    "100"), never "1.50" nor "1E+2"."""
    return f"{multiplier.normalize():f}"


@register.filter
def times_the_points(multiplier) -> str:
    """{{ tier.multiplier|times_the_points }}, what a member reads their purchases earn:
    "1.5 times the points", "twice the points", and "points at the standard rate" for x1
    (a tier of benefits alone), never "1 times"."""
    if multiplier == 1:
        return "points at the standard rate"
    if multiplier == 2:
        return "twice the points"
    return f"{times(multiplier)} times the points"
