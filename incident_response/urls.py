from django.contrib import admin
from django.urls import include, path

from . import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("hooks/", include("incidents.urls_hooks")),
    path("", include("learning.urls")),
    path("slack/", include("coordination.urls")),
    path("status/", include("web.urls_status")),
    path("", include("web.urls")),
]
