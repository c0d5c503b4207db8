"""The ingest API."""

urlpatterns = []
