"""The ingest API."""

from django.urls import path

from agents.api import receive_events

urlpatterns = [
    path("events", receive_events, name="ingest-events"),
]
