"""What members tells the apps above it, which it does not import (DESIGN.md, Layout)."""

from django.dispatch import Signal

# Sent once an erasure has committed, with `codes`: the customer codes it replaced, for
# what another app drops in a worker (the API queues the dropping of its answers kept
# for repeats, whose codes it kept in the erasure's transaction: member_codes_erased).
member_erased = Signal()

# Sent inside an erasure's transaction, with `codes` (the customer codes it replaced:
# old: new) and `accounts` (the ids of the accounts merged with the erased ones,
# members.services.merge_family): the apps above finish the erasure in the same
# transaction. What they keep about those accounts naming them by code is renamed (a
# status match carried over by a merge), the point requests still waiting for the
# erased accounts are rejected (points.services.goodwill.reject_requests_of_erased), and
# the API keeps the codes until its answers naming them are dropped (CodesToForget).
member_codes_erased = Signal()
