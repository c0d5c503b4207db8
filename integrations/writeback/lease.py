"""A per-connection lease so one worker at a time sends a connection's batches.

One worker at a time sends a connection's batches. Marketo documents that
two upserts of the same email sent concurrently can create duplicate leads,
and the exactly-once protocol relies on a batch left in flight belonging to
a worker that is gone once its lease lapses.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from integrations.models import MarketoConnection


# Seconds a lease outlives the read timeout. WRITEBACK_LEASE_MARGIN_SECONDS
# overrides it so that tests of a killed worker can let a lease lapse quickly.
DEFAULT_LEASE_MARGIN_SECONDS = 30.0


def lease_seconds() -> float:
    # A lease must outlive the longest Marketo call, or a slow call would let
    # a second worker take over while the first is still sending.
    margin = getattr(settings, "WRITEBACK_LEASE_MARGIN_SECONDS", DEFAULT_LEASE_MARGIN_SECONDS)
    return max(settings.WRITEBACK_LEASE_SECONDS, settings.MARKETO_READ_TIMEOUT_SECONDS + margin)


def acquire_lease(connection_id: int, owner: str) -> bool:
    """Take the connection's lease if it is free, expired or already ours."""
    now = timezone.now()
    taken = MarketoConnection.objects.filter(pk=connection_id).filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(lease_owner=owner)
    ).update(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds()))
    return taken == 1


def renew_lease(connection_id: int, owner: str) -> bool:
    """Extend our lease; False when another worker took it (ours had lapsed)."""
    now = timezone.now()
    renewed = MarketoConnection.objects.filter(pk=connection_id, lease_owner=owner).update(
        lease_expires_at=now + timedelta(seconds=lease_seconds())
    )
    return renewed == 1


def release_lease(connection_id: int, owner: str):
    MarketoConnection.objects.filter(pk=connection_id, lease_owner=owner).update(
        lease_owner="", lease_expires_at=None
    )
