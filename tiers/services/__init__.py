"""Tier status: qualification (T2), recalculation (T3), history (T4), degradation and
restoration (D1-D4), status matches (grant_status) and their end. One module per use
case; the names other apps use are these."""

from tiers.services.degradation import (
    degrade_chunk,
    degrade_inactive_members,
    drops_missed,
    restore,
)
from tiers.services.history import Reason, TierLog
from tiers.services.qualification import (
    degraded,
    follow_new_rules,
    open_at_tier,
    recalculate_all_tiers,
    requalify,
)
from tiers.services.status_match import (
    end_status_grants,
    end_status_match,
    grant_status,
    hold_granted_tier,
    move_status_grant,
)

__all__ = [
    "Reason",
    "TierLog",
    "degrade_chunk",
    "degrade_inactive_members",
    "degraded",
    "drops_missed",
    "end_status_grants",
    "end_status_match",
    "grant_status",
    "hold_granted_tier",
    "move_status_grant",
    "open_at_tier",
    "recalculate_all_tiers",
    "requalify",
    "follow_new_rules",
    "restore",
]
