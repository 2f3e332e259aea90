"""/api/v1/: resources without a trailing slash, the schema and docs with one."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from api.views import members, redemptions, transactions, vouchers
from api.views.common import Schema, UnknownPath

app_name = "api"
# The schema and its documentation need no key.
PUBLIC = dict(authentication_classes=[], permission_classes=[AllowAny], throttle_classes=[])

urlpatterns = [
    path("members", members.Members.as_view(), name="members"),
    path("members/<str:code>", members.MemberDetail.as_view(), name="member"),
    path("members/<str:code>/ledger", members.MemberLedger.as_view(), name="member-ledger"),
    path("members/<str:code>/rewards", members.MemberRewards.as_view(), name="member-rewards"),
    path("transactions", transactions.Transactions.as_view(), name="transactions"),
    path("actions", transactions.Actions.as_view(), name="actions"),
    path("redemptions", redemptions.Redemptions.as_view(), name="redemptions"),
    path(
        "redemptions/<int:pk>/cancel",
        redemptions.CancelRedemption.as_view(),
        name="redemption-cancel",
    ),
    path("vouchers/<str:code>", vouchers.VoucherDetail.as_view(), name="voucher"),
    path("vouchers/<str:code>/use", vouchers.UseVoucher.as_view(), name="voucher-use"),
    path("schema/", Schema.as_view(**PUBLIC), name="schema"),
    path(
        "docs/",
        # A page to read: OPTIONS would describe it through the page's HTML renderer
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", http_method_names=["get", "head"], **PUBLIC
        ),
        name="docs",
    ),
    re_path(r"", UnknownPath.as_view(), name="unknown"),  # last: a problem, not HTML
]
