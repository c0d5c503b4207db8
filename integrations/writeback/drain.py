"""Running queued writeback in this process until nothing more can run before a deadline."""

import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from agents.models import Organization
from integrations.models import MarketoConnection, WritebackRecord
from integrations.writeback.context import FlushReport
from integrations.writeback.flush import flush_connection


@dataclass
class DrainReport:
    flush: FlushReport = field(default_factory=FlushReport)
    pending: int = 0
    paused: dict[str, str] = field(default_factory=dict)


def drain(organization: Organization | None = None, *, timeout_seconds: float = 300.0, sleep=time.sleep) -> DrainReport:
    """Flush every connection (or one organization's) until idle or the deadline.

    Short waits (batch backoff, rate limits) are waited out; work that can't
    run before the deadline (a paused connection) stays pending.
    """
    deadline = timezone.now() + timedelta(seconds=timeout_seconds)
    connections = MarketoConnection.objects.select_related("organization")
    if organization is not None:
        connections = connections.filter(organization=organization)

    report = DrainReport()
    for connection in connections:
        while timezone.now() < deadline:
            flushed = flush_connection(connection.pk, flush_all=True, wait_until=deadline, sleep=sleep)
            report.flush.merge(flushed)
            if flushed.paused_reason:
                report.paused[connection.organization.slug] = flushed.paused_reason
                break
            if not _has_runnable(connection, deadline):
                break
            sleep(0.2)  # another worker holds the lease; let it finish

    pending = WritebackRecord.objects.filter(
        status__in=[WritebackRecord.Status.PENDING, WritebackRecord.Status.IN_FLIGHT]
    )
    if organization is not None:
        pending = pending.filter(organization=organization)
    report.pending = pending.count()
    return report


def _has_runnable(connection: MarketoConnection, deadline) -> bool:
    return (
        WritebackRecord.objects.filter(
            organization_id=connection.organization_id,
            status__in=[WritebackRecord.Status.PENDING, WritebackRecord.Status.IN_FLIGHT],
        )
        .exclude(not_before__gt=deadline)
        .exists()
    )
