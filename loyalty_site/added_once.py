"""Every add form of the CX Manager is applied once: a campaign, a reward or a tier sent
twice (two tabs, a refresh, the browser sending it again) is added once, and the second
is told so. A campaign added twice would multiply every purchase twice. The form
carries a one-time token (FormSubmission), recorded in the transaction that adds the
row: a form refused by its checks leaves it unused, to be corrected and sent again.
CXManagerSite mixes this into every admin it registers."""

import uuid

from django.contrib import messages
from django.shortcuts import redirect

from loyalty_site.models import FormSubmission

ONCE = "_once"
ALREADY_ADDED = "This form was already sent: nothing was added twice."


class AlreadySent(Exception):
    pass


def _token(request) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.POST.get(ONCE, ""))
    except ValueError:  # none (a form posted by a script), or not a token
        return None


class AddedOnce:
    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if add:  # the same token when the form comes back with errors
            context["once_token"] = _token(request) or uuid.uuid4()
        return super().render_change_form(request, context, add, change, form_url, obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        token = _token(request) if request.method == "POST" and object_id is None else None
        try:
            if token and FormSubmission.objects.filter(token=token).exists():
                raise AlreadySent
            return super().changeform_view(request, object_id, form_url, extra_context)
        except AlreadySent:  # what the form added stays, once
            self.message_user(request, ALREADY_ADDED, messages.WARNING)
            opts = self.opts
            return redirect(f"admin:{opts.app_label}_{opts.model_name}_changelist")

    def save_model(self, request, obj, form, change):
        # In the admin's transaction: a twin sent at the same moment waits here for this
        # one, then finds its token and adds nothing.
        if not change and (token := _token(request)) and not FormSubmission.first(token):
            raise AlreadySent
        super().save_model(request, obj, form, change)
