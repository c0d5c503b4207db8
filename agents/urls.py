"""Workspace settings pages for customer admins."""

urlpatterns = []
