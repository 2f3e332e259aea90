from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class CXManagerAdminConfig(AdminConfig):
    """django.contrib.admin with the CX Manager as its default site."""

    default_site = "loyalty_site.sites.CXManagerSite"


class LoyaltySiteConfig(AppConfig):
    """The site itself: staff roles and the CX Manager's own records."""

    name = "loyalty_site"
    verbose_name = "CX Manager"
