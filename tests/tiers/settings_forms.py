"""The programme's settings (tiers, point definitions) as their admin pages post them,
and the errors a marketer reads beside the fields."""

from django.utils.html import escape

from points.models import PointDefinition
from tiers.models import Tier


def tier_form(tier: Tier, **changed) -> dict:
    """A tier's change form as its page posts it, with `changed` typed over it."""
    return {
        "name": tier.name,
        "code": tier.code,
        "threshold": str(tier.threshold),
        "multiplier": str(tier.multiplier),
        "points_expire": "on" if tier.points_expire else "",
        "upgrade_bonus_points": str(tier.upgrade_bonus_points),
        "benefits": tier.benefits,
        **changed,
    }


def definition_form(**changed) -> dict:
    """A new action definition, as its add page posts it."""
    return {
        "name": "Write a long review",
        "handle": "long-review",
        "kind": "action",
        "earn_rate": "1",
        "points": "300",
        "accrue_delay_days": "0",
        "counts_toward_tier": "on",
        "redeemable": "on",
        "is_active": "on",
        "awarded_on": "",
        **changed,
    }


def errors(page) -> str:
    """The form's errors as the marketer reads them beside each field (and shown on the
    page)."""
    form = page.context["adminform"].form
    html = page.content.decode()
    assert all(escape(message) in html for messages in form.errors.values() for message in messages)
    return " ".join(f"{field}: {' '.join(messages)}" for field, messages in form.errors.items())


def new_tier_form(**changed) -> dict:
    """A new tier, as its add page posts it."""
    return {
        "name": "Diamond",
        "code": "diamond",
        "threshold": "20000",
        "multiplier": "4",
        "points_expire": "",
        "upgrade_bonus_points": "1000",
        "benefits": "",
        **changed,
    }


def purchase_points() -> PointDefinition:
    return PointDefinition.objects.get(handle="purchase-points")


def purchase_points_form(**changed) -> dict:
    """ "Purchase points" as its change page posts it, with `changed` typed over it."""
    purchase = purchase_points()
    saved = {
        "name": purchase.name,
        "handle": purchase.handle,
        "kind": purchase.kind,
        "earn_rate": str(purchase.earn_rate),
        "points": str(purchase.points),
    }
    return definition_form(**{**saved, **changed})
