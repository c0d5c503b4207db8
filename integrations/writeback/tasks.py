"""django-q2 tasks of the writeback: a flush per connection and a periodic sweep.

Tasks carry ids only and are safe to run twice: the connection lease lets
one flush at a time send, and the database records decide what is due.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from integrations.models import MarketoConnection, WritebackBatch, WritebackRecord
from integrations.writeback.flush import flush_connection
from integrations.writeback.pacing import batch_window
from integrations.writeback.queueing import queue_flush

logger = logging.getLogger(__name__)


def flush_connection_task(connection_id: int):
    """Flush a connection, waiting out its batch window so records sent together share calls."""
    connection = MarketoConnection.objects.filter(pk=connection_id).first()
    window = batch_window(connection) if connection is not None else timedelta(0)
    wait_until = timezone.now() + window + timedelta(seconds=1)
    # Stop a minute before django-q2's task timeout, which would kill the
    # worker mid-batch, and queue a fresh task for the rest of a backlog.
    run_until = timezone.now() + timedelta(seconds=max(30, settings.Q_CLUSTER.get("timeout", 300) - 60))
    report = flush_connection(connection_id, wait_until=wait_until, run_until=run_until)
    if report.stopped_early:
        queue_flush(connection_id)
    return {
        "written": report.written,
        "skipped": report.skipped,
        "failed": report.failed,
        "retried": report.retried,
        "paused": report.paused_reason,
    }


def sweep_writeback():
    """Queue a flush for every connection with due work or with a batch a dead worker left in flight.

    django-q2's Redis broker drops the task of a killed worker, and a task
    can fail before it flushes. The records in the database are the queue of
    record, so this sweep finds their work again.
    """
    now = timezone.now()
    due = WritebackRecord.objects.filter(status=WritebackRecord.Status.PENDING).filter(
        Q(not_before__isnull=True) | Q(not_before__lte=now)
    )
    organization_ids = set(due.values_list("organization_id", flat=True).distinct())
    abandoned = set(
        WritebackBatch.objects.filter(status=WritebackBatch.Status.IN_FLIGHT).values_list("connection_id", flat=True)
    )

    connections = MarketoConnection.objects.filter(
        Q(organization_id__in=organization_ids) | Q(pk__in=abandoned),
        status=MarketoConnection.Status.CONNECTED,
    ).exclude(paused_until__gt=now)
    queued = 0
    for connection_id in connections.values_list("pk", flat=True):
        queue_flush(connection_id)
        queued += 1
    if queued:
        logger.info("writeback.sweep.queued connections=%s", queued)
    return queued


def ensure_sweep_schedule():
    """Create the periodic sweep schedule once (idempotent)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="writeback-sweep",
        defaults={
            "func": "integrations.writeback.tasks.sweep_writeback",
            "schedule_type": Schedule.MINUTES,
            "minutes": max(1, settings.WRITEBACK_SWEEP_INTERVAL_SECONDS // 60),
            "repeats": -1,
        },
    )
