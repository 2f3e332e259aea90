"""What members tells the apps above it, which it does not import (DESIGN.md, Layout)."""

from django.dispatch import Signal

# Sent once an erasure has committed, with `codes`: the customer codes it replaced, so
# that what another app keeps under a code goes too (the API's answers kept for repeats).
member_erased = Signal()
