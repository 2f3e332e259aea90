from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from api.views.common import UnknownPath
from loyalty_site.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("api.urls")),
    # Any other path under /api (/api/v1 itself, /api/v2/...): a 404 problem, as under
    # /api/v1/, not Django's page (nor, in DEBUG, its error for a POST it would redirect).
    re_path(r"^api(?:/|$)", UnknownPath.as_view()),
    path("healthz", healthz, name="healthz"),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]

# Django's own 400 (a Host not in ALLOWED_HOSTS): a problem under /api/.
handler400 = "api.errors.bad_request"
handler500 = "api.errors.server_error"

# Reward images in development; production serves MEDIA_ROOT from the web server.
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
