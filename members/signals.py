"""What members tells the apps above it, which it does not import (DESIGN.md, Layout)."""

from django.dispatch import Signal

# Sent once an erasure has committed, with `codes`: the customer codes it replaced, so
# that what another app keeps under a code goes too (the API's answers kept for repeats).
member_erased = Signal()

# Sent inside an erasure's transaction, with `codes` (the customer codes it replaced:
# old: new) and `accounts` (the ids of the accounts merged with the erased ones,
# members.services.merge_family): what an app keeps about those accounts naming them by
# code is renamed in the same transaction (a status match carried over by a merge).
member_codes_erased = Signal()
