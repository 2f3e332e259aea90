"""Erasing members' personal data from the members list (M9, the right to be
forgotten): a confirmation page that says it is final and names each member, then each
erasure with its history line."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch

from core import events
from core.admin import action_confirmation, chosen_for_action
from members.models import Member
from members.services import erase_member

ERASE_AT_MOST = 100  # members one erasure acts on, each named on its confirmation page


class MemberErasure:
    """The member admin's "erase" action."""

    @admin.action(permissions=["erase"], description="Erase personal data of the selected members")
    def erase(self, request, queryset):
        """Right to be forgotten, after a confirmation page that says it is final and
        names each member. At most ERASE_AT_MOST at once: "select all" on a list of a
        million built a page of a million names (16 s at 200,000 members)."""
        rows = queryset.prefetch_related(
            # Erased with them (M9): named on the page.
            Prefetch(
                "merged_members",
                Member.objects.filter(erased_at=None).order_by("pk"),
                to_attr="still_merged_in",
            )
        )
        too_many = f"Erase at most {ERASE_AT_MOST} members at once: find each with the search."
        chosen = chosen_for_action(self, request, rows, limit=ERASE_AT_MOST, too_many=too_many)
        if chosen is None:
            return None
        if request.POST.get("confirm") != "yes":
            return action_confirmation(
                self,
                request,
                "admin/members/member/erase_confirmation.html",
                chosen,
                title="Erase personal data?",
                members=chosen,
                tells_endpoints=events.wanted(events.EventType.MEMBER_ERASED),
            )
        erased_ids = set()
        for member in chosen:
            if member.merged_into_id in erased_ids:
                continue  # erased with the account it was merged into (M9)
            try:
                with transaction.atomic():  # the erasure and its history line
                    erased = erase_member(member=member, by=request.user)
                    self.log_change(request, erased, "Personal data erased")
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                erased_ids.add(erased.pk)
                self.message_user(request, f"Personal data erased: now {erased.external_id}.")

    def has_erase_permission(self, request):
        return request.user.has_perm("members.erase_member")
