"""URL routes: the ingest API, the workspace settings pages and the staff admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("agents.api_urls")),
    path("", include("agents.urls")),
]
