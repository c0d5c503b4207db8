"""Queueing flush tasks on django-q2.

A task carries only a connection id: the writeback records in the database
are the queue of record, and a flush sends whatever is due for that
connection. Queueing the same connection twice is harmless because only the
holder of the connection's lease sends anything.
"""

import logging

from django.db import transaction
from django_q.tasks import async_task

from integrations.models import MarketoConnection

logger = logging.getLogger(__name__)

FLUSH_TASK = "integrations.writeback.tasks.flush_connection_task"


def queue_flush(connection_id: int):
    """Queue a flush task; a broker failure is logged, never raised.

    Callers queue after their records are committed, so the records are the
    work and the periodic sweep queues it again. Raising here would fail a
    webhook request whose events are already stored, and Docket would send
    them again for nothing.
    """
    try:
        async_task(FLUSH_TASK, connection_id, group=f"flush-{connection_id}")
    except Exception:
        # Any broker error (Redis down, the ORM broker's database busy):
        # the sweep every WRITEBACK_SWEEP_INTERVAL_SECONDS finds the work.
        logger.warning("writeback.flush.queue_failed connection=%s", connection_id, exc_info=True)
        return
    logger.debug("writeback.flush.queued connection=%s", connection_id)


def queue_flush_after_commit(organization_id: int):
    """Queue a flush of the organization's connection once the current transaction commits."""
    connection_id = (
        MarketoConnection.objects.filter(organization_id=organization_id).values_list("pk", flat=True).first()
    )
    if connection_id is None:
        return
    transaction.on_commit(lambda: queue_flush(connection_id))
