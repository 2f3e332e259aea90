from django.contrib import admin


class CXManagerSite(admin.AdminSite):
    """The CX Manager: the admin as the product for CX agents and marketers."""

    site_header = "CX Manager"
    site_title = "CX Manager"
    index_title = "Dashboard"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Members, ledger, tiers and history must never vanish in bulk: bulk delete
        # bypasses every rule. Single rows are deleted only where an admin allows it.
        self.disable_action("delete_selected")
